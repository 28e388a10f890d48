using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tokenizers;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Selection;

/// <summary>Data and float64 references computed directly from captured states, independent of the library's code.</summary>
internal static class SelectionFixtures
{
    public static List<int[]> Sequences(int seed, int count, int minLength, int maxLength, int vocab)
    {
        var rng = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, rng.Next(minLength, maxLength + 1)).Select(_ => rng.Next(1, vocab)).ToArray())];
    }

    public static TokenBatch Batch(IEnumerable<int[]> sequences, PaddingSide side) =>
        TokenBatch.FromSequences([.. sequences.Select(s => (IReadOnlyList<int>)s)], padId: 0, side);

    /// <summary>Per sequence, per block (index 0 = embeddings, k + 1 = output of block k), per real position: the state as float64.</summary>
    public static List<double[][][]> States(ITransformerAdapter model, TokenBatch batch)
    {
        using var scope = NewDisposeScope();
        using var capture = new ActivationCapture(Enumerable.Range(0, model.BlockCount));
        using var state = model.Embed(batch.InputIds, batch.AttentionMask);
        var embeddings = state.Hidden.clone();
        model.RunBlocks(state, 0, model.BlockCount, capture);                   // one call for all blocks
        var mask = batch.AttentionMask.data<long>().ToArray();
        long b = batch.InputIds.shape[0], t = batch.InputIds.shape[1];
        int d = model.HiddenSize;
        var layers = new List<float[]> { embeddings.data<float>().ToArray() };
        for (int k = 0; k < model.BlockCount; k++) layers.Add(capture[k].Output.data<float>().ToArray());
        var result = new List<double[][][]>();
        for (int row = 0; row < b; row++)
        {
            var positions = Enumerable.Range(0, (int)t).Where(p => mask[row * t + p] == 1).ToArray();
            result.Add([.. layers.Select(layer => positions.Select(p => Enumerable.Range(0, d).Select(j => (double)layer[(row * t + p) * d + j]).ToArray()).ToArray())]);
        }
        return result;
    }

    public static double Cos(double[] a, double[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
        return dot / Math.Sqrt(na * nb);
    }

    public static double Angular(double cos) => Math.Acos(Math.Clamp(cos, -1, 1)) / Math.PI;

    /// <summary>
    /// Reference distance of cut [s, s + n): mean over sequences of d(output of s − 1, output of s + n − 1) at the last
    /// real token, or mean over all real tokens.
    /// </summary>
    public static double Reference(List<double[][][]> states, int s, int n, bool angular, bool lastToken)
    {
        double sum = 0; long count = 0;
        foreach (var seq in states)
        {
            var a = seq[s];            // output of block s − 1 (index shifted by the embeddings)
            var b = seq[s + n];        // output of block s + n − 1
            var positions = lastToken ? new[] { a.Length - 1 } : Enumerable.Range(0, a.Length).ToArray();
            foreach (int p in positions)
            {
                double c = Cos(a[p], b[p]);
                sum += angular ? Angular(c) : 1 - c;
                count++;
            }
        }
        return sum / count;
    }

    /// <summary>Mean next-token NLL over positions whose token and next token are real, in float64 from the logits <c>[B, T, V]</c>.</summary>
    public static double MeanNextTokenLoss(IEnumerable<TokenBatch> batches, Func<TokenBatch, Tensor> logitsOf)
    {
        double sum = 0; long count = 0;
        foreach (var batch in batches)
        {
            using var scope = NewDisposeScope();
            var logitsTensor = logitsOf(batch);
            int vocab = (int)logitsTensor.shape[^1];
            var logits = logitsTensor.to(ScalarType.Float32).data<float>().ToArray();
            var ids = batch.InputIds.data<long>().ToArray();
            var mask = batch.AttentionMask.data<long>().ToArray();
            long t = batch.InputIds.shape[1];
            for (int b = 0; b < batch.Count; b++)
                for (int p = 0; p + 1 < t; p++)
                {
                    if (mask[b * t + p] == 0 || mask[b * t + p + 1] == 0) continue;
                    var row = Enumerable.Range(0, vocab).Select(v => (double)logits[(b * t + p) * vocab + v]).ToArray();
                    double max = row.Max(), logSum = max + Math.Log(row.Sum(x => Math.Exp(x - max)));
                    sum += logSum - row[ids[b * t + p + 1]];
                    count++;
                }
        }
        return sum / count;
    }
}
