using TorchSharp;

namespace ReplaceMe.Core.Tests.Runtime;

/// <summary>
/// Which TorchSharp methods create a <see cref="Scalar"/> that nothing keeps alive, derived from TorchSharp's own IL
/// rather than from a hand-kept list. A <em>creator</em> returns a new Scalar (the implicit conversions and
/// <c>ToScalar</c>); whoever calls one owns the result and must keep it alive across the native call. A method is
/// <em>hazardous</em> when its body calls a creator and hands the result on as a temporary (for example
/// <c>Tensor.square()</c> is <c>pow(2)</c>, and <c>Tensor.add(Tensor)</c> is <c>add(target, 1)</c>), or calls
/// another hazardous method. TorchSharp 0.107 passes only the Scalar's raw handle to LibTorch, so such a temporary
/// can be finalized, and its native memory freed, while LibTorch is still reading it.
/// </summary>
internal sealed class ScalarHazards
{
    private ScalarHazards(HashSet<string> creators, Dictionary<string, string> hazardous)
    {
        Creators = creators;
        Hazardous = hazardous;
    }

    /// <summary>Keys of the methods that return a new Scalar to their caller.</summary>
    public HashSet<string> Creators { get; }

    /// <summary>Keys of the hazardous methods, each with the chain of calls that makes it so.</summary>
    public Dictionary<string, string> Hazardous { get; }

    /// <summary>The analysis of the TorchSharp assembly the tests run against.</summary>
    public static ScalarHazards ForLoadedTorchSharp { get; } = Analyze(typeof(torch).Assembly.Location);

    /// <summary>Analyzes the TorchSharp assembly at <paramref name="torchSharpPath"/>.</summary>
    public static ScalarHazards Analyze(string torchSharpPath)
    {
        var calls = IlCallGraph.Calls(torchSharpPath);
        // Creators: the Scalar constructor, the conversions, and every method that returns a Scalar it made.
        var creators = calls.Select(c => c.Target).Where(t => t.StartsWith("TorchSharp.Scalar::.ctor(", StringComparison.Ordinal))
            .ToHashSet(StringComparer.Ordinal);
        var returnsScalar = calls.Where(c => c.CallerReturns == "TorchSharp.Scalar").Select(c => c.Caller).ToHashSet(StringComparer.Ordinal);
        var callees = calls.Where(c => c.TargetAssembly == "TorchSharp")
            .GroupBy(c => c.Caller, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(c => c.Target).Distinct(StringComparer.Ordinal).ToList(), StringComparer.Ordinal);

        for (bool grew = true; grew;)
        {
            grew = false;
            foreach (var (caller, targets) in callees)
                if (returnsScalar.Contains(caller) && !creators.Contains(caller) && targets.Any(creators.Contains))
                    grew |= creators.Add(caller);
        }

        var hazardous = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (caller, targets) in callees)
        {
            if (creators.Contains(caller)) continue;
            var creator = targets.FirstOrDefault(creators.Contains);
            if (creator is not null) hazardous[caller] = "creates " + Short(creator);
        }
        // Propagate to callers until nothing changes.
        bool changed = true;
        while (changed)
        {
            changed = false;
            foreach (var (caller, targets) in callees)
            {
                if (hazardous.ContainsKey(caller) || creators.Contains(caller)) continue;
                var bad = targets.FirstOrDefault(hazardous.ContainsKey);
                if (bad is null) continue;
                hazardous[caller] = "calls " + Short(bad);
                changed = true;
            }
        }
        return new ScalarHazards(creators, hazardous);
    }

    /// <summary>The reason a method is hazardous, following the chain down to the Scalar it creates.</summary>
    public string Explain(string key)
    {
        var parts = new List<string>();
        var current = key;
        for (int depth = 0; depth < 8 && Hazardous.TryGetValue(current, out var why); depth++)
        {
            parts.Add(why);
            if (!why.StartsWith("calls ", StringComparison.Ordinal)) break;
            current = Hazardous.Keys.First(k => Short(k) == why["calls ".Length..]);
        }
        return string.Join(", which ", parts);
    }

    /// <summary>A key without namespaces, for messages.</summary>
    public static string Short(string key) => key.Replace("TorchSharp.", "", StringComparison.Ordinal).Replace("System.", "", StringComparison.Ordinal);
}
