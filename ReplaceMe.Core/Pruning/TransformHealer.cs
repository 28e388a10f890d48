using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ReplaceMe.Core.Calibration;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Pruning;

/// <summary>
/// Healing after pruning (the paper's "training only the linear map with a distillation loss"): fine-tunes only the
/// <c>mlp.down_proj</c> of the block each cut's T was folded into, with Adam, so that the pruned model's next-token
/// distributions approach the original model's (mean per-token KL(original ‖ pruned) over the valid tokens of the
/// calibration batches). Every other tensor of the pruned model stays bit-identical.
/// </summary>
/// <remarks>
/// <para><b>Why the folded down-projection and not T.</b> After the fold, <c>W' = TᵀW</c> is the only place where T lives
/// in the model, so training <c>W'</c> trains everything T can express and more (T is <c>d × d</c>, <c>W'</c> is
/// <c>d × d_ff</c>); it needs nothing from the pruning run but the fold block, so it heals any pruned model, including
/// plain removal (identity), runs after all cuts are applied (the loss sees the final model), and the result is exactly
/// the tensor that is saved.</para>
/// <para><b>Memory.</b> The original model's logits are computed per batch chunk from an unpruned copy
/// (<c>teacher</c>), never stored: the cost is one extra model in memory plus, per chunk, about six logits-sized
/// tensors, bounded by <see cref="HealingOptions.LogitsBudgetBytes"/>. The student runs its first blocks (up to the
/// earliest trained one) without gradients, so the autograd graph covers only the blocks after it and the head.</para>
/// </remarks>
public static class TransformHealer
{
    /// <summary>Heals the fold block of every cut of <paramref name="pruned"/> (<see cref="CutOutcome.Applied"/>.FoldBlock,
    /// which is also its index in the final model, since cuts are applied in ascending order).</summary>
    /// <remarks>The transforms in <paramref name="pruned"/> stay those of the estimator; the healed weights are in the model.</remarks>
    /// <inheritdoc cref="Heal(DecoderModel, ITransformerAdapter, IReadOnlyList{int}, IReadOnlyList{TokenBatch}, HealingOptions, IProgress{PruningProgress}, ILogger, CancellationToken)"/>
    public static HealingResult Heal(
        PruningResult pruned, ITransformerAdapter teacher, IReadOnlyList<TokenBatch> batches, HealingOptions options,
        IProgress<PruningProgress>? progress = null, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pruned);
        var student = StudentOf(pruned);
        var blocks = FoldBlocks(pruned);
        var result = Heal(student, teacher, blocks, batches, options, progress, logger, cancellationToken);
        pruned.AddHealing(result);
        return result;
    }

    /// <summary>
    /// Heals like <see cref="Heal(PruningResult, ITransformerAdapter, IReadOnlyList{TokenBatch}, HealingOptions, IProgress{PruningProgress}, ILogger, CancellationToken)"/>
    /// and scores the pruned model on <paramref name="heldOut"/> before and after (<see cref="Evaluate"/>): KL to the
    /// original and perplexities, recorded in <see cref="HealingResult.HeldOut"/> and, with the rest of the run, in
    /// <c>replaceme.json</c> (<see cref="PruningResult.Healing"/>).
    /// </summary>
    /// <param name="pruned">The pruning run whose model is healed in place.</param>
    /// <param name="teacher">The original, unpruned model.</param>
    /// <param name="batches">Batches healing trains on.</param>
    /// <param name="heldOut">Batches kept out of pruning and healing (at least one; none of them may be in <paramref name="batches"/>).</param>
    /// <param name="options">Steps, learning rate and schedule, seed, memory budget.</param>
    /// <param name="progress">Receives "heal" records.</param>
    /// <param name="logger">Log sink.</param>
    /// <param name="cancellationToken">Checked before every step and every chunk.</param>
    /// <exception cref="ArgumentException">No held-out batch, a held-out batch that is also a training batch, or what the
    /// other overload refuses.</exception>
    /// <exception cref="PruningException">See the other overload.</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public static HealingResult Heal(
        PruningResult pruned, ITransformerAdapter teacher, IReadOnlyList<TokenBatch> batches, IReadOnlyList<TokenBatch> heldOut,
        HealingOptions options, IProgress<PruningProgress>? progress = null, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pruned);
        ArgumentNullException.ThrowIfNull(batches);
        ArgumentNullException.ThrowIfNull(heldOut);
        ArgumentNullException.ThrowIfNull(options);
        if (heldOut.Count == 0) throw new ArgumentException("Give at least one held-out batch (or heal without held-out scores).", nameof(heldOut));
        var training = new HashSet<TokenBatch>(batches, ReferenceEqualityComparer.Instance);
        int shared = heldOut.Count(training.Contains);
        if (shared > 0) throw new ArgumentException($"{shared} of the {heldOut.Count} held-out batches are also training batches; held-out scores need batches healing never sees.", nameof(heldOut));
        var student = StudentOf(pruned);
        options.Validate();
        var before = Evaluate(student, teacher, heldOut, options.LogitsBudgetBytes, cancellationToken);
        var blocks = FoldBlocks(pruned);
        var result = Heal(student, teacher, blocks, batches, options, progress, logger, cancellationToken);
        var after = Evaluate(student, teacher, heldOut, options.LogitsBudgetBytes, cancellationToken);
        result = result with
        {
            HeldOut = new HealingHeldOut(before, after, heldOut.Count, heldOut.Sum(b => b.Count), CalibrationBatches.Fingerprint(heldOut),
                batches.Count, batches.Sum(b => b.Count)),
        };
        pruned.AddHealing(result);
        return result;
    }

    /// <summary>The pruned model, which healing trains through its blocks: the built-in <see cref="DecoderModel"/> only.</summary>
    private static DecoderModel StudentOf(PruningResult pruned) => pruned.Model as DecoderModel
        ?? throw new UnsupportedModelException($"Healing needs the built-in DecoderModel (it trains through the model's blocks); this model is a {pruned.Model.GetType().Name}.");

    /// <summary>The fold block of every cut, in the final model's indices (cuts are applied in ascending order).</summary>
    private static List<int> FoldBlocks(PruningResult pruned) => pruned.Outcomes.Select(o => o.Applied.FoldBlock).Distinct().ToList();

    /// <summary>Fine-tunes the down-projections of <paramref name="blocks"/> of <paramref name="student"/> in place.</summary>
    /// <param name="student">The pruned model; only <c>model.layers.{b}.mlp.down_proj</c> (weight and bias, if any) of the
    /// given blocks change.</param>
    /// <param name="teacher">The original, unpruned model (same vocabulary, same device or one its logits can be moved from).
    /// It is only read.</param>
    /// <param name="blocks">Blocks of <paramref name="student"/> (its current indices) whose down-projection is trained.</param>
    /// <param name="batches">Calibration batches; only positions with mask 1 count.</param>
    /// <param name="options">Steps, learning rate and schedule, seed, memory budget.</param>
    /// <param name="progress">Receives "heal" records (fraction, tokens, the step's loss).</param>
    /// <param name="logger">Log sink.</param>
    /// <param name="cancellationToken">Checked before every step and every chunk. A cancelled run leaves the weights as
    /// updated by the steps done so far.</param>
    /// <returns>The loss curve and what was trained.</returns>
    /// <exception cref="ArgumentException">Options out of range, no or repeated blocks, a block that does not exist, or the
    /// teacher is the student.</exception>
    /// <exception cref="PruningException">No batch or no valid token, teacher and student vocabularies differ, or the loss
    /// became non-finite (the step is named).</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public static HealingResult Heal(
        DecoderModel student, ITransformerAdapter teacher, IReadOnlyList<int> blocks, IReadOnlyList<TokenBatch> batches,
        HealingOptions options, IProgress<PruningProgress>? progress = null, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(blocks);
        ArgumentNullException.ThrowIfNull(batches);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        TorchRuntime.EnsureLoaded(logger);
        logger ??= NullLogger.Instance;
        if (ReferenceEquals(student, teacher)) throw new ArgumentException("The teacher must be an unpruned copy of the model, not the pruned model itself.", nameof(teacher));
        if (blocks.Count == 0) throw new ArgumentException("Give at least one block whose down-projection to train.", nameof(blocks));
        if (blocks.Distinct().Count() != blocks.Count) throw new ArgumentException($"Blocks {string.Join(", ", blocks)} repeat a block.", nameof(blocks));
        foreach (var b in blocks)
            if (b < 0 || b >= student.BlockCount)
                throw new ArgumentException($"Block {b} does not exist in the pruned model ({student.BlockCount} blocks).", nameof(blocks));
        if (batches.Count == 0) throw new PruningException("Healing needs calibration batches; none were given.");
        if (batches.Sum(b => b.TokenCount) == 0) throw new PruningException("The healing batches contain no valid token (every attention-mask entry is 0).");

        var clock = Stopwatch.StartNew();
        var parameters = new List<Tensor>();
        foreach (var b in blocks.Order())
        {
            var linear = student.GetDownProjection(b);
            parameters.Add(linear.weight!);
            if (linear.bias is { } bias) parameters.Add(bias);
        }
        int firstBlock = blocks.Min();
        var sorted = string.Join(", ", blocks.Order());
        HealingLog.Start(logger, sorted, options.Steps, options.LearningRate, batches.Count);
        var losses = new List<double>(options.Steps);
        var rates = new List<double>(options.Steps);
        var optimizers = parameters.Select(p => new AdamStep(p, options.LearningRate)).ToList(); // stepped at the schedule's rate
        var random = new Random(options.Seed);
        var order = new List<int>();
        long tokens = 0;
        try
        {
            foreach (var p in parameters) p.requires_grad = true;
            for (int step = 0; step < options.Steps; step++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (order.Count == 0)
                {
                    order.AddRange(Enumerable.Range(0, batches.Count));
                    Shuffle(order, random);
                }
                var batch = batches[order[^1]];
                order.RemoveAt(order.Count - 1);
                long valid = batch.TokenCount;
                if (valid == 0) { step--; continue; }
                foreach (var p in parameters) AdamStep.ZeroGrad(p);
                double klSum = 0;
                foreach (var (start, rows) in Chunks(batch, student.Config.VocabSize, options.LogitsBudgetBytes))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    klSum += BackwardChunk(student, teacher, batch, start, rows, firstBlock, valid);
                }
                double loss = klSum / valid;
                if (!double.IsFinite(loss))
                    throw new PruningException($"Healing step {step + 1}: the KL loss is {loss}; lower HealingOptions.LearningRate (now {options.LearningRate}).");
                double rate = options.LearningRateAt(step);
                foreach (var (p, adam) in parameters.Zip(optimizers)) adam.Step(p, rate);
                losses.Add(loss);
                rates.Add(rate);
                tokens += valid;
                progress?.Report(new PruningProgress("heal", (double)(step + 1) / options.Steps, firstBlock, tokens, loss, $"healing step {step + 1}/{options.Steps}"));
                int every = Math.Max(1, options.Steps / 10);
                if ((step + 1) % every == 0 || step == 0) HealingLog.Step(logger, step + 1, options.Steps, loss, rate);
            }
        }
        finally
        {
            foreach (var p in parameters)
            {
                AdamStep.ZeroGrad(p);
                p.requires_grad = false;
            }
            foreach (var o in optimizers) o.Dispose();
        }
        HealingLog.Done(logger, losses[0], losses[^1], clock.Elapsed.TotalSeconds);
        return new HealingResult(blocks.Order().ToList(), options, losses, rates, tokens, clock.Elapsed);
    }

    /// <summary>
    /// Mean KL(original ‖ pruned) over the valid tokens of <paramref name="batches"/> and both models' perplexities on
    /// their (token, next token) pairs, without gradients. Use held-out batches to see what healing did.
    /// </summary>
    /// <param name="student">The pruned (or any) model.</param>
    /// <param name="teacher">The original model.</param>
    /// <param name="batches">Batches to score; only positions with mask 1 count.</param>
    /// <param name="logitsBudgetBytes">Memory for logits per chunk of rows (see <see cref="HealingOptions.LogitsBudgetBytes"/>).</param>
    /// <param name="cancellationToken">Checked between chunks.</param>
    /// <exception cref="PruningException">No batch, no valid token, or the vocabularies differ.</exception>
    public static HealingEvaluation Evaluate(
        DecoderModel student, ITransformerAdapter teacher, IReadOnlyList<TokenBatch> batches, long logitsBudgetBytes = 512L << 20,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(batches);
        if (logitsBudgetBytes < 1) throw new ArgumentException($"logitsBudgetBytes must be ≥ 1; got {logitsBudgetBytes}.", nameof(logitsBudgetBytes));
        TorchRuntime.EnsureLoaded();
        double kl = 0, nllStudent = 0, nllTeacher = 0;
        long tokens = 0, pairs = 0;
        foreach (var batch in batches)
        {
            foreach (var (start, rows) in Chunks(batch, student.Config.VocabSize, logitsBudgetBytes))
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var noGrad = no_grad();
                using var scope = NewDisposeScope();
                var ids = batch.InputIds.narrow(0, start, rows);
                var mask = batch.AttentionMask.narrow(0, start, rows);
                var logq = FullLogits(student, ids, mask).to(ScalarType.Float32).log_softmax(-1);            // [b, T, V]
                var logp = TeacherLogits(teacher, ids, mask, logq).log_softmax(-1);
                var m = mask.to(ScalarType.Float32, logq.device);
                kl += logp.exp().mul(HeldScalars.AddScaled(logp, logq, -1)).sum(-1).mul(m).to(ScalarType.Float64).sum().item<double>();
                tokens += (long)m.to(ScalarType.Float64).sum().item<double>();
                long t = ids.shape[1];
                if (t < 2) continue;
                var maskLong = mask.to(ScalarType.Int64, logq.device);
                var pair = maskLong.narrow(1, 1, t - 1).mul(maskLong.narrow(1, 0, t - 1));                   // [b, T-1]
                var target = ids.to(ScalarType.Int64, logq.device).narrow(1, 1, t - 1).mul(pair).unsqueeze(-1); // padding → id 0
                var pairF = pair.to(ScalarType.Float64);
                nllStudent -= logq.narrow(1, 0, t - 1).gather(-1, target).squeeze(-1).to(ScalarType.Float64).mul(pairF).sum().item<double>();
                nllTeacher -= logp.narrow(1, 0, t - 1).gather(-1, target).squeeze(-1).to(ScalarType.Float64).mul(pairF).sum().item<double>();
                pairs += (long)pairF.sum().item<double>();
            }
        }
        if (tokens == 0) throw new PruningException("The evaluation batches contain no valid token.");
        return new HealingEvaluation(kl / tokens, pairs > 0 ? Math.Exp(nllStudent / pairs) : double.NaN,
            pairs > 0 ? Math.Exp(nllTeacher / pairs) : double.NaN, tokens, pairs);
    }

    /// <summary>Forward and backward of one chunk; returns the chunk's summed KL. Gradients accumulate (scaled by 1/valid).</summary>
    private static double BackwardChunk(DecoderModel student, ITransformerAdapter teacher, TokenBatch batch, long start, long rows, int firstBlock, long valid)
    {
        using var scope = NewDisposeScope();
        var ids = batch.InputIds.narrow(0, start, rows);
        var mask = batch.AttentionMask.narrow(0, start, rows);
        var positions = mask.reshape(-1).nonzero().squeeze(1).to(student.Device);                      // flat indices of valid tokens
        if (positions.numel() == 0) return 0;
        Tensor logp;
        using (no_grad())
        {
            var full = FullLogits(teacher, ids, mask);
            var flat = full.reshape(-1, full.shape[^1]).index_select(0, positions.to(full.device));
            logp = CheckVocabulary(flat, student).to(ScalarType.Float32, student.Device).log_softmax(-1); // [N, V]
        }
        var logq = student.LogitsWithGradient(ids, mask, positions, firstBlock).to(ScalarType.Float32).log_softmax(-1);
        var kl = logp.exp().mul(HeldScalars.AddScaled(logp, logq, -1)).sum();
        HeldScalars.Times(kl, 1.0 / valid).backward();
        return kl.item<float>();
    }

    private static Tensor FullLogits(ITransformerAdapter model, Tensor ids, Tensor mask)
    {
        using var state = model.Embed(ids, mask);
        model.RunBlocks(state, 0, model.BlockCount);
        return model.Head(state);
    }

    private static Tensor TeacherLogits(ITransformerAdapter teacher, Tensor ids, Tensor mask, Tensor like)
    {
        var logits = FullLogits(teacher, ids, mask);
        if (logits.shape[^1] != like.shape[^1])
            throw new PruningException($"The original model has {logits.shape[^1]} logits per token but the pruned model {like.shape[^1]}: they are not the same model.");
        return logits.to(ScalarType.Float32, like.device);
    }

    private static Tensor CheckVocabulary(Tensor teacherLogits, DecoderModel student)
    {
        if (teacherLogits.shape[^1] != student.Config.VocabSize)
            throw new PruningException($"The original model has {teacherLogits.shape[^1]} logits per token but the pruned model {student.Config.VocabSize}: they are not the same model.");
        return teacherLogits;
    }

    /// <summary>Row ranges of <paramref name="batch"/> whose logits fit the budget (about six <c>rows·T·vocab</c> float32 tensors).</summary>
    private static IEnumerable<(long Start, long Rows)> Chunks(TokenBatch batch, int vocab, long budgetBytes)
    {
        long b = batch.InputIds.shape[0], t = Math.Max(1, batch.InputIds.shape[1]);
        long perRow = 6L * t * vocab * sizeof(float);
        long rows = Math.Clamp(budgetBytes / perRow, 1, Math.Max(1, b));
        for (long s = 0; s < b; s += rows) yield return (s, Math.Min(rows, b - s));
    }

    private static void Shuffle(List<int> items, Random random)
    {
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}

/// <summary>Source-generated log messages of healing.</summary>
internal static partial class HealingLog
{
    [LoggerMessage(EventId = 651, Level = LogLevel.Information, Message = "Healing down_proj of block(s) {Blocks}: {Steps} Adam steps, peak lr {LearningRate}, {Batches} batches")]
    public static partial void Start(ILogger logger, string blocks, int steps, double learningRate, int batches);

    [LoggerMessage(EventId = 652, Level = LogLevel.Information, Message = "Healing step {Step}/{Steps}: KL {Loss:G4}, lr {LearningRate:G3}")]
    public static partial void Step(ILogger logger, int step, int steps, double loss, double learningRate);

    [LoggerMessage(EventId = 653, Level = LogLevel.Information, Message = "Healing done: KL {First:G4} -> {Last:G4} in {Seconds:F1} s")]
    public static partial void Done(ILogger logger, double first, double last, double seconds);
}
