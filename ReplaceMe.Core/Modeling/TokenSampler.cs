namespace ReplaceMe.Core.Modeling;

/// <summary>
/// Picks the next token from one row of logits: argmax at temperature 0, otherwise a draw from the softmax of
/// logits / temperature restricted to the top-p nucleus. Runs on the CPU in double precision so that a seed gives the
/// same draws on every device.
/// </summary>
internal sealed class TokenSampler
{
    private readonly double _temperature, _topP;
#pragma warning disable CA5394 // Sampling text, not security: a seeded, reproducible generator is the point.
    private readonly Random _random;

    public TokenSampler(double temperature, double topP, int seed)
    {
        _temperature = temperature;
        _topP = topP;
        _random = new Random(seed);
    }

    public int Next(ReadOnlySpan<float> logits)
    {
        if (_temperature == 0) return ArgMax(logits);
        var order = new int[logits.Length];
        var probs = new double[logits.Length];
        double max = double.NegativeInfinity;
        for (int i = 0; i < logits.Length; i++) max = Math.Max(max, logits[i]);
        double sum = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            order[i] = i;
            probs[i] = Math.Exp((logits[i] - max) / _temperature);
            sum += probs[i];
        }
        // Most likely first; ties by id so the order (and so the draw) is deterministic.
        Array.Sort(order, (a, b) => probs[b] != probs[a] ? probs[b].CompareTo(probs[a]) : a.CompareTo(b));
        int keep = 0;
        double mass = 0;
        while (keep < order.Length && (keep == 0 || mass < _topP * sum))
            mass += probs[order[keep++]];
        double u = _random.NextDouble() * mass;
        for (int k = 0; k < keep; k++)
        {
            u -= probs[order[k]];
            if (u < 0) return order[k];
        }
        return order[keep - 1];
    }
#pragma warning restore CA5394

    internal static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
}
