using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Runtime;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Modeling;

/// <summary>The ownership rule of <see cref="ITransformerAdapter"/> at the model boundary, as written in its docs.</summary>
public class OwnershipTests
{
    private static readonly ModelConfig Config = TinyModels.Llama(layers: 2);

    public OwnershipTests() => TorchRuntime.EnsureLoaded();

    private static DecoderModel TinyModel() => TinyModels.Build(Config, TinyModels.RandomWeights(Config, 1), ScalarType.Float32);

    private static Tensor Ids() => tensor(TinyModels.RandomIds(Config, 5, 2).Select(i => (long)i).ToArray(), [1, 5], ScalarType.Int64);

    [Fact]
    public void Embed_and_RunBlocks_leave_the_callers_ids_and_mask_intact()
    {
        using var model = TinyModel();
        using var ids = Ids();
        using var mask = ones([1, 5], ScalarType.Int64);
        using (var state = model.Embed(ids, mask)) model.RunBlocks(state, 0, 2);
        Assert.False(ids.IsInvalid);
        Assert.False(mask.IsInvalid);
        Assert.Equal(5, mask.sum().item<long>());
    }

    [Fact]
    public void The_states_tensors_outlive_the_callers_dispose_scopes()
    {
        using var model = TinyModel();
        using var ids = Ids();
        using var mask = ones([1, 5], ScalarType.Int64);
        DecoderState state;
        using (NewDisposeScope()) state = model.Embed(ids, mask);
        using (state)
        {
            using (NewDisposeScope()) model.RunBlocks(state, 0, 1);
            using (NewDisposeScope()) model.RunBlocks(state, 1, 2);
            Assert.False(state.Hidden.IsInvalid);
            Assert.False(state.AttentionMask.IsInvalid);
            using var logits = model.Head(state);
            Assert.Equal([1L, 5, Config.VocabSize], logits.shape);
            Assert.True(logits.isfinite().all().item<bool>());
        }
        Assert.True(state.Hidden.IsInvalid); // released by the state, not leaked
    }

    [Fact]
    public void A_hidden_state_set_inside_a_scope_belongs_to_the_state()
    {
        // A third-party adapter may build its state inside its own scope: the state still owns the tensors.
        DecoderState state;
        Tensor previous;
        using (NewDisposeScope())
        {
            state = new DecoderState(zeros(1, 2, 4), ones([1, 2], ScalarType.Int64));
            previous = state.Hidden;
            state.Hidden = ones(1, 2, 4);
        }
        using (state)
        {
            Assert.True(previous.IsInvalid);             // replaced, so disposed by the setter
            Assert.Equal(8.0f, state.Hidden.sum().item<float>());
            Assert.Equal(2L, state.AttentionMask.sum().item<long>());
        }
    }
}
