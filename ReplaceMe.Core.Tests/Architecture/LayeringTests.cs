using System.Text.RegularExpressions;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Tests.Runtime;

namespace ReplaceMe.Core.Tests.Architecture;

/// <summary>
/// Keeps ReplaceMe.Core's folders layered (docs/architecture.md): a folder may use its own types and those of lower
/// layers only, and every namespace equals its folder. The dependencies are read from the compiled assembly
/// (signatures, attributes and IL), so they are exactly what the compiler bound.
/// </summary>
public partial class LayeringTests
{
    /// <summary>Each folder's layer, bottom first. Folders in the same layer may not use each other.</summary>
    internal static readonly Dictionary<string, int> Layers = new(StringComparer.Ordinal)
    {
        [""] = 0,               // ReplaceMe.Core: shared vocabulary (BlockCut, PruningProgress, exceptions)
        ["Runtime"] = 1,        // TorchSharp loading, held scalars, dtype rules
        ["Checkpoints"] = 2,    // safetensors files, atomic output folders
        ["Tokenizers"] = 2,     // tokenizers, token batches
        ["Modeling"] = 3,       // the decoder, config.json, HF checkpoint folders, generation
        ["Llama2c"] = 4,        // llama2.c import
        ["Activations"] = 4,    // token rows, normal equations
        ["Calibration"] = 4,    // calibration text and batches
        ["Surgery"] = 4,        // folding T, removing blocks
        ["Estimation"] = 5,     // estimators of T
        ["Evaluation"] = 5,     // perplexity, tasks, retention
        ["Selection"] = 6,      // layer selectors (replacement-aware selection fits T)
        ["Pruning"] = 7,        // the pipeline that wires them
    };

    private static readonly string CoreDir = Path.Combine(TestPaths.RepoRoot, "ReplaceMe.Core");

    [Fact]
    public void Every_namespace_equals_its_folder_and_every_folder_has_a_layer()
    {
        var wrong = new List<string>();
        foreach (var file in SourceFiles())
        {
            var folder = Path.GetRelativePath(CoreDir, Path.GetDirectoryName(file)!).Replace('\\', '/');
            folder = folder == "." ? "" : folder;
            var expected = folder.Length == 0 ? "ReplaceMe.Core" : "ReplaceMe.Core." + folder.Replace('/', '.');
            var declared = NamespaceLine().Match(File.ReadAllText(file));
            if (!declared.Success || declared.Groups[1].Value != expected)
                wrong.Add($"{Path.GetRelativePath(CoreDir, file)} declares '{(declared.Success ? declared.Groups[1].Value : "no namespace")}', expected '{expected}'");
            if (!Layers.ContainsKey(folder))
                wrong.Add($"{Path.GetRelativePath(CoreDir, file)}: folder '{folder}' has no layer in {nameof(LayeringTests)}.{nameof(Layers)} (and docs/architecture.md)");
        }
        Assert.True(wrong.Count == 0, string.Join("\n", wrong.Distinct()));
    }

    [Fact]
    public void No_folder_uses_a_type_of_its_own_layer_or_a_higher_one()
    {
        var violations = Violations(typeof(HeldScalars).Assembly.Location);
        Assert.True(violations.Count == 0, "Layering violations (see docs/architecture.md):\n" + string.Join("\n", violations));
    }

    [Fact]
    public void The_layering_check_sees_a_lower_folder_using_a_higher_one()
    {
        // This test assembly's Architecture.LowerUsesHigher plays "Runtime" and uses a "Pruning" type: it must be caught.
        var deps = TypeDependencies.Read(typeof(LayeringTests).Assembly.Location);
        var used = deps["ReplaceMe.Core.Tests.Architecture.LowerUsesHigher"];
        Assert.Contains("ReplaceMe.Core.Pruning.PruningOptions", used);      // a field type
        Assert.Contains("ReplaceMe.Core.Selection.DistanceMetric", used);    // only in a method body (IL)
        Assert.Contains("ReplaceMe.Core.Estimation.CosineOptions", used);    // only in a local's type
        Assert.DoesNotContain("ReplaceMe.Core.Evaluation.ModelEvaluator", used);
    }

    /// <summary>Each use of a type from the same or a higher layer, as "Namespace.Type (layer) uses Namespace.Type (layer)".</summary>
    private static List<string> Violations(string assemblyPath)
    {
        var list = new List<string>();
        foreach (var (type, used) in TypeDependencies.Read(assemblyPath))
        {
            if (Folder(type) is not { } from) continue;
            foreach (var target in used)
            {
                if (Folder(target) is not { } to || to == from) continue;
                if (Layers[to] >= Layers[from])
                    list.Add($"{type} ({Show(from)}, layer {Layers[from]}) uses {target} ({Show(to)}, layer {Layers[to]})");
            }
        }
        return list.Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>The folder of a ReplaceMe.Core type, or null for other assemblies' types and compiler-generated ones.</summary>
    private static string? Folder(string fullName)
    {
        if (!fullName.StartsWith("ReplaceMe.Core.", StringComparison.Ordinal) || fullName.StartsWith("ReplaceMe.Core.Tests", StringComparison.Ordinal))
            return null;
        var ns = fullName[..fullName.LastIndexOf('.')];
        var folder = ns == "ReplaceMe.Core" ? "" : ns["ReplaceMe.Core.".Length..].Replace('.', '/');
        return Layers.ContainsKey(folder) ? folder : null;
    }

    private static string Show(string folder) => folder.Length == 0 ? "ReplaceMe.Core root" : folder + "/";

    private static IEnumerable<string> SourceFiles() =>
        Directory.EnumerateFiles(CoreDir, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                        && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal));

    [GeneratedRegex(@"^namespace\s+([\w.]+)\s*;", RegexOptions.Multiline)]
    private static partial Regex NamespaceLine();
}

/// <summary>A deliberate layering mistake for <see cref="LayeringTests.The_layering_check_sees_a_lower_folder_using_a_higher_one"/>.</summary>
internal sealed class LowerUsesHigher
{
    public global::ReplaceMe.Core.Pruning.PruningOptions Options { get; } = new();

    public static string Metric() => nameof(global::ReplaceMe.Core.Selection.DistanceMetric.Angular) + global::ReplaceMe.Core.Selection.DistanceMetric.Cosine.ToString();

    public static int Epochs()
    {
        var options = new global::ReplaceMe.Core.Estimation.CosineOptions();
        return options.Epochs;
    }
}
