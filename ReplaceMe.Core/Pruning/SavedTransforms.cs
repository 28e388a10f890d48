using System.Globalization;
using System.Text.RegularExpressions;
using ReplaceMe.Core.Checkpoints;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Pruning;

/// <summary>
/// The fitted transforms of a pruned model as their own artifact: <see cref="PruningResult.Save(string, ReplaceMe.Core.Modeling.SaveOptions, CancellationToken)"/>
/// writes <see cref="FileName"/> beside the weights, one float32 <c>[d, d]</c> tensor per cut that was replaced by a
/// transform (named <see cref="TensorName"/>, e.g. <c>cut_3_5</c> for the original blocks [3, 5)), and
/// <c>replaceme.json</c> names the file and each cut's tensor. T is applied as X·T to the MLP output of block
/// start − 1, i.e. folded as <c>down_proj.weight ← Tᵀ·W</c>; with the original model, T reproduces the fold.
/// </summary>
public static partial class SavedTransforms
{
    /// <summary>File name of the transforms inside a saved pruned model's folder.</summary>
    public const string FileName = "replaceme_transforms.safetensors";

    /// <summary>The tensor name of <paramref name="cut"/>'s transform: <c>cut_{start}_{end}</c> in original block indices.</summary>
    public static string TensorName(BlockCut cut) => string.Create(CultureInfo.InvariantCulture, $"cut_{cut.Start}_{cut.End}");

    /// <summary>Reads every transform of a saved pruned model (float32 <c>[d, d]</c> on the CPU; the caller disposes them).</summary>
    /// <param name="path">The saved model's folder, or the transforms file itself.</param>
    /// <returns>Cut (original indices) → T, in ascending cut order.</returns>
    /// <exception cref="CheckpointFormatException">The file is missing or malformed, or a tensor is not a <c>cut_S_E</c> square matrix.</exception>
    public static IReadOnlyList<KeyValuePair<BlockCut, Tensor>> Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var file = Directory.Exists(path) ? Path.Combine(path, FileName) : path;
        if (!File.Exists(file))
            throw new CheckpointFormatException($"'{file}' does not exist; a model saved by PruningResult.Save with at least one fitted transform has {FileName}.");
        using var reader = SafetensorsReader.Open(file);
        var loaded = new List<KeyValuePair<BlockCut, Tensor>>();
        try
        {
            foreach (var name in reader.Names)
            {
                var match = NamePattern().Match(name);
                if (!match.Success)
                    throw new CheckpointFormatException($"'{file}': tensor '{name}' is not named cut_START_END.");
                var cut = new BlockCut(int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture));
                var shape = reader.GetInfo(name).Shape;
                if (shape.Count != 2 || shape[0] != shape[1] || cut.End <= cut.Start)
                    throw new CheckpointFormatException($"'{file}': tensor '{name}' must be a square [d, d] matrix of a non-empty cut; got shape [{string.Join(", ", shape)}].");
                loaded.Add(new(cut, reader.Read(name, ScalarType.Float32)));
            }
        }
        catch
        {
            foreach (var (_, t) in loaded) t.Dispose();
            throw;
        }
        return [.. loaded.OrderBy(kv => kv.Key.Start)];
    }

    /// <summary>Float32 copies of the outcomes' transforms under their tensor names (the caller disposes them).</summary>
    internal static List<KeyValuePair<string, Tensor>> ToTensors(IEnumerable<CutOutcome> outcomes) =>
        [.. outcomes.Where(o => o.Transform is not null)
            .Select(o => new KeyValuePair<string, Tensor>(TensorName(o.Cut), o.Transform!.to(ScalarType.Float32, CPU, copy: true).contiguous()))];

    [GeneratedRegex(@"^cut_(\d{1,9})_(\d{1,9})$")]
    private static partial Regex NamePattern();
}
