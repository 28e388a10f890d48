using TorchSharp;

namespace ReplaceMe.Core.Modeling;

/// <summary>
/// The ordered decoder blocks, registered as children <c>0</c> … <c>n−1</c> so that state-dict keys read
/// <c>layers.{i}.…</c>. Unlike TorchSharp's ModuleList it re-registers after removal, keeping keys contiguous.
/// </summary>
internal sealed class BlockList : torch.nn.Module
{
    private readonly List<DecoderBlock> _blocks;

    public BlockList(IEnumerable<DecoderBlock> blocks) : base(nameof(BlockList))
    {
        _blocks = [.. blocks];
        Reregister();
    }

    public int Count => _blocks.Count;

    public DecoderBlock this[int index] => _blocks[index];

    protected override void RegisterComponents() { }

    /// <summary>Removes and disposes blocks <c>[start, end)</c>, renumbers the rest and their registration.</summary>
    public void RemoveRange(int start, int end)
    {
        var removed = _blocks.GetRange(start, end - start);
        _blocks.RemoveRange(start, end - start);
        Reregister();
        foreach (var block in removed) block.Dispose();
    }

    private void Reregister()
    {
        ClearModules();
        for (int i = 0; i < _blocks.Count; i++)
        {
            _blocks[i].LayerIndex = i;
            register_module(i.ToString(System.Globalization.CultureInfo.InvariantCulture), _blocks[i]);
        }
    }
}
