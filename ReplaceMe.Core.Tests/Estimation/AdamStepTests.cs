using ReplaceMe.Core.Estimation;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Estimation;

public class AdamStepTests
{
    [Fact]
    public void Matches_torch_optim_Adam_step_by_step()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var start = randn(6, 4, dtype: ScalarType.Float64);
        var x = randn(32, 6, dtype: ScalarType.Float64);
        var y = randn(32, 4, dtype: ScalarType.Float64);

        using var mine = new TorchSharp.Modules.Parameter(start.clone(), requires_grad: true);
        using var reference = new TorchSharp.Modules.Parameter(start.clone(), requires_grad: true);
        using var adam = new AdamStep(mine, 0.05);
        using var torchAdam = optim.Adam([reference], lr: 0.05);
        for (int step = 0; step < 25; step++)
        {
            AdamStep.ZeroGrad(mine);
            (x.mm(mine) - y).square().mean().backward();
            adam.Step(mine);

            torchAdam.zero_grad();
            (x.mm(reference) - y).square().mean().backward();
            torchAdam.step();

            double diff = (mine.detach() - reference.detach()).abs().max().item<double>();
            Assert.True(diff < 1e-12, $"step {step}: max difference {diff}");
        }
        // The parameter actually moved (the comparison is not between two untouched tensors).
        Assert.True((mine.detach() - start).abs().max().item<double>() > 0.1);
    }
}
