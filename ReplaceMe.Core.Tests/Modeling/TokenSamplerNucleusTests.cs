using ReplaceMe.Core.Modeling;

namespace ReplaceMe.Core.Tests.Modeling;

public class TokenSamplerNucleusTests
{
    /// <summary>The nucleus (descending prefix reaching mass p) computed from the full vocabulary, independently.</summary>
    private static int[] FullNucleus(double[] probs, double topP)
    {
        double sum = probs.Sum();
        var order = Enumerable.Range(0, probs.Length).OrderByDescending(i => probs[i]).ThenBy(i => i).ToArray();
        var nucleus = new List<int>();
        double mass = 0;
        foreach (var id in order)
        {
            if (nucleus.Count > 0 && mass >= topP * sum) break;
            nucleus.Add(id);
            mass += probs[id];
        }
        return [.. nucleus];
    }

    [Theory]
    [InlineData(0.5, 1.0)]
    [InlineData(0.95, 1.0)]
    [InlineData(0.95, 3.0)]
    [InlineData(0.999, 0.3)]
    [InlineData(1.0, 1.0)]
    public void Candidates_contain_exactly_the_full_sort_nucleus_as_their_prefix(double topP, double logitScale)
    {
        var random = new Random(7);
        for (int trial = 0; trial < 20; trial++)
        {
            var logits = Enumerable.Range(0, 32000).Select(_ => random.NextDouble() * 20 * logitScale).ToArray();
            double max = logits.Max();
            var probs = logits.Select(l => Math.Exp(l - max)).ToArray();
            var expected = FullNucleus(probs, topP);

            var candidates = TokenSampler.NucleusCandidates(probs, topP * probs.Sum());
            var sorted = candidates.OrderByDescending(i => probs[i]).ThenBy(i => i).ToArray();
            Assert.True(sorted.Length >= expected.Length, $"{sorted.Length} candidates for a nucleus of {expected.Length}");
            Assert.Equal(expected, sorted[..expected.Length]);
            // A peaked distribution (logit range ≥ 20) needs far fewer candidates than the vocabulary; a flat one may need all.
            if (topP < 1 && logitScale >= 1) Assert.True(candidates.Length < probs.Length / 2, $"{candidates.Length} candidates: the set should be much smaller than the vocabulary");
        }
    }
}
