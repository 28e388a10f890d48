using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Estimation;

/// <summary>
/// Adam (Kingma &amp; Ba; PyTorch's defaults: β₁ = 0.9, β₂ = 0.999, ε = 1e-8, no weight decay) for one parameter.
/// It is written out rather than taken from <c>torch.optim.Adam</c> because TorchSharp's optimizer passes temporary
/// scalars to native code without keeping them alive (see <see cref="HeldScalars"/>). Every scalar here lives as long
/// as the optimizer or the step that uses it.
/// </summary>
internal sealed class AdamStep : IDisposable
{
    private const double Beta1 = 0.9, Beta2 = 0.999, Epsilon = 1e-8;
    private readonly double _learningRate;
    private readonly Scalar _beta1 = HeldScalars.Hold(Beta1), _oneMinusBeta1 = HeldScalars.Hold(1 - Beta1);
    private readonly Scalar _beta2 = HeldScalars.Hold(Beta2), _oneMinusBeta2 = HeldScalars.Hold(1 - Beta2);
    private readonly Scalar _epsilon = HeldScalars.Hold(Epsilon);
    private readonly Tensor _m, _v; // first and second moment estimates, shaped like the parameter
    private int _t;

    public AdamStep(Tensor parameter, double learningRate)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        _learningRate = learningRate;
        _m = zeros_like(parameter).DetachFromDisposeScope();
        _v = zeros_like(parameter).DetachFromDisposeScope();
    }

    /// <summary>Clears the parameter's accumulated gradient before the next backward pass.</summary>
    public static void ZeroGrad(Tensor parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        using var noGrad = no_grad();
        parameter.grad?.zero_();
    }

    /// <summary>One update of <paramref name="parameter"/> from its current gradient, at the constructor's learning rate.</summary>
    public void Step(Tensor parameter) => Step(parameter, _learningRate);

    /// <summary>One update of <paramref name="parameter"/> from its current gradient, at <paramref name="learningRate"/> (a schedule's value for this step).</summary>
    public void Step(Tensor parameter, double learningRate)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        var grad = parameter.grad ?? throw new InvalidOperationException("Adam step without a gradient: call backward() first.");
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        _t++;
        _m.mul_(_beta1).add_(grad, _oneMinusBeta1);                 // m ← β₁m + (1 − β₁)g
        _v.mul_(_beta2).addcmul_(grad, grad, _oneMinusBeta2);       // v ← β₂v + (1 − β₂)g²
        double bias1 = 1 - Math.Pow(Beta1, _t), bias2 = 1 - Math.Pow(Beta2, _t);
        var denominator = HeldScalars.TimesInPlace(_v.sqrt(), 1 / Math.Sqrt(bias2)).add_(_epsilon, HeldScalars.One); // √v̂ + ε
        HeldScalars.AddCDivInPlace(parameter, _m, denominator, -learningRate / bias1); // θ ← θ − lr·m̂/(√v̂ + ε)
    }

    public void Dispose()
    {
        _m.Dispose();
        _v.Dispose();
        _beta1.Dispose();
        _oneMinusBeta1.Dispose();
        _beta2.Dispose();
        _oneMinusBeta2.Dispose();
        _epsilon.Dispose();
    }
}
