using System.Diagnostics;
using System.Globalization;
using ReplaceMe.Core.Activations;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Estimation;

/// <summary>
/// Mergeable calibration statistics of one cut: the least-squares normal equations in float64 (A = XᵀX, B = XᵀZ with
/// X = M_{s−1}, Z = L_{e−1} − (L_{s−1} − M_{s−1}), ‖Z‖², token count) and the angular-distance sums between the
/// outputs of blocks s − 1 and e − 1 (over every valid token and over each sequence's last token). They are sums over
/// tokens, so statistics collected on separate calibration shards (other processes, machines or GPUs) add up to the
/// statistics of all the data: <see cref="Merge"/> then <see cref="Solve"/> gives the T one process would fit on it.
/// Saved as one safetensors file with the model's fingerprint (<see cref="ModelIdentity"/>), the cut, d and the
/// activation dtype in its metadata; files that disagree on any of them are refused (<see cref="StatisticsMismatchException"/>).
/// Memory: two d×d float64 matrices (d = 4096: 256 MiB).
/// </summary>
public sealed class CutStatistics : IDisposable
{
    /// <summary>The <c>__metadata__</c> value of <c>replaceme_format</c> in a statistics file.</summary>
    public const string FormatName = "replaceme-cut-statistics";

    /// <summary>Version of the file layout.</summary>
    public const int FormatVersion = 1;

    private readonly NormalEquations _sums;
    private bool _disposed;

    private CutStatistics(BlockCut cut, int hiddenSize, string modelIdentity, string activationDType, string origin)
    {
        Cut = cut;
        HiddenSize = hiddenSize;
        ModelIdentity = modelIdentity;
        ActivationDType = activationDType;
        Origin = origin;
        _sums = new NormalEquations(hiddenSize, CPU);
    }

    /// <summary>The cut, in the model's block indices.</summary>
    public BlockCut Cut { get; }

    /// <summary>Hidden size d.</summary>
    public int HiddenSize { get; }

    /// <summary>Fingerprint of the model the statistics were computed on (<see cref="Modeling.ModelIdentity.Of"/>).</summary>
    public string ModelIdentity { get; }

    /// <summary>The compute dtype of the activations the sums were built from (e.g. <c>float32</c>).</summary>
    public string ActivationDType { get; }

    /// <summary>Where these statistics come from: a file path, the files merged, or "calibration" for fresh ones.</summary>
    public string Origin { get; }

    /// <summary>Valid tokens accumulated.</summary>
    public long Tokens => _sums.Rows;

    /// <summary>Sequences (rows with at least one valid token) accumulated.</summary>
    public long Sequences { get; private set; }

    /// <summary>Σ over valid tokens of the angular distance arccos(cos)/π between the outputs of blocks s − 1 and e − 1.</summary>
    public double DistanceSum { get; private set; }

    /// <summary>The same sum over each sequence's last valid token only.</summary>
    public double LastTokenDistanceSum { get; private set; }

    /// <summary>Mean angular distance of the cut over every valid token (<see cref="DistanceSum"/> / <see cref="Tokens"/>).</summary>
    public double MeanDistance => Tokens > 0 ? DistanceSum / Tokens : double.NaN;

    /// <summary>Mean angular distance over last tokens (the distance profile's default, <c>DistanceTokens.LastToken</c>).</summary>
    public double MeanLastTokenDistance => Sequences > 0 ? LastTokenDistanceSum / Sequences : double.NaN;

    /// <summary>XᵀX, <c>[d, d]</c> float64 on CPU (owned by this object).</summary>
    public Tensor Gram => _sums.Gram;

    /// <summary>XᵀZ, <c>[d, d]</c> float64 on CPU (owned by this object).</summary>
    public Tensor Cross => _sums.Cross;

    /// <summary>‖Z‖²_F.</summary>
    public double TargetSquaredNorm => _sums.TargetSquaredNorm;

    /// <summary>
    /// Runs <paramref name="batches"/> through <paramref name="model"/> up to block <c>cut.End − 1</c> (no later block,
    /// no LM head) and accumulates the statistics of <paramref name="cut"/> at valid tokens.
    /// </summary>
    /// <param name="model">The model (not modified).</param>
    /// <param name="cut">The cut, in the model's indices.</param>
    /// <param name="batches">Calibration batches (this shard's part of the data).</param>
    /// <param name="modelIdentity">The model's fingerprint (<see cref="Modeling.ModelIdentity.Of"/> of its folder).</param>
    /// <param name="progress">Receives one "calibrate" report per batch.</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    /// <exception cref="PruningException">The cut is invalid for the model, or an activation is not finite.</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public static CutStatistics Collect(ITransformerAdapter model, BlockCut cut, IReadOnlyList<TokenBatch> batches, string modelIdentity,
        IProgress<PruningProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batches);
        ArgumentException.ThrowIfNullOrEmpty(modelIdentity);
        TorchRuntime.EnsureLoaded();
        cut.Validate(model.BlockCount);
        var stats = new CutStatistics(cut, model.HiddenSize, modelIdentity, Precision.TorchDtypeName(model.DType), "calibration");
        try
        {
            int fold = cut.FoldBlock, last = cut.End - 1;
            using var noGrad = no_grad();
            for (int b = 0; b < batches.Count; b++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using (var scope = NewDisposeScope())
                {
                    var (capture, mask) = CutCapture.Run(model, cut, batches[b]);
                    using var captured = capture;
                    var x = ValidTokens.Gather(capture[fold].MlpOutput, mask);        // [N, d]
                    var before = ValidTokens.Gather(capture[fold].Output, mask);      // [N, d] = L_{s−1}
                    var target = ValidTokens.Gather(capture[last].Output, mask);      // [N, d] = L_{e−1}
                    FitInputs.Check(cut, model.HiddenSize, x, before, target);
                    var z = target.to(ScalarType.Float64).sub(before.to(ScalarType.Float64).sub(x.to(ScalarType.Float64))); // target − Y
                    stats._sums.Add(x, z);
                    stats.DistanceSum += AngularSum(before, target);
                    var lastIndex = ValidTokens.LastFlatIndex(mask);                  // [B']
                    stats.LastTokenDistanceSum += AngularSum(ValidTokens.Rows(capture[fold].Output, lastIndex), ValidTokens.Rows(capture[last].Output, lastIndex));
                    stats.Sequences += lastIndex.shape[0];
                }
                progress?.Report(new PruningProgress("calibrate", (b + 1.0) / batches.Count, cut.Start, stats.Tokens,
                    Message: $"cut {cut}: batch {b + 1}/{batches.Count}"));
            }
            return stats;
        }
        catch
        {
            stats.Dispose();
            throw;
        }
    }

    /// <summary>Σ arccos(clamp(cos(a_i, b_i)))/π over rows, in float64 (a zero row has cosine 0 with anything).</summary>
    private static double AngularSum(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var ua = nn.functional.normalize(a.to(ScalarType.Float64), p: 2, dim: 1, eps: 1e-300);
        var ub = nn.functional.normalize(b.to(ScalarType.Float64), p: 2, dim: 1, eps: 1e-300);
        var cosine = ua.mul(ub).sum(1).clamp(HeldScalars.MinusOne, HeldScalars.One); // [N]
        return cosine.acos().sum().item<double>() / Math.PI;
    }

    /// <summary>
    /// The sum of several statistics of the same model, cut, d and activation dtype (e.g. one file per calibration shard).
    /// </summary>
    /// <exception cref="ArgumentException">No statistics were given.</exception>
    /// <exception cref="StatisticsMismatchException">Two of them differ in model, cut, hidden size or activation dtype.</exception>
    public static CutStatistics Merge(IReadOnlyList<CutStatistics> parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        if (parts.Count == 0) throw new ArgumentException("Give at least one statistics object to merge.", nameof(parts));
        var first = parts[0];
        foreach (var p in parts)
        {
            ArgumentNullException.ThrowIfNull(p, nameof(parts));
            Require(first, p, "model", first.ModelIdentity, p.ModelIdentity);
            Require(first, p, "cut", first.Cut.ToString(), p.Cut.ToString());
            Require(first, p, "hidden size", first.HiddenSize.ToString(CultureInfo.InvariantCulture), p.HiddenSize.ToString(CultureInfo.InvariantCulture));
            Require(first, p, "activation dtype", first.ActivationDType, p.ActivationDType);
        }
        var merged = new CutStatistics(first.Cut, first.HiddenSize, first.ModelIdentity, first.ActivationDType,
            string.Join(" + ", parts.Select(p => p.Origin)));
        foreach (var p in parts) merged.Add(p);
        return merged;
    }

    private void Add(CutStatistics other)
    {
        _sums.AddSums(other.Gram, other.Cross, other.TargetSquaredNorm, other.Tokens);
        Sequences += other.Sequences;
        DistanceSum += other.DistanceSum;
        LastTokenDistanceSum += other.LastTokenDistanceSum;
    }

    private static void Require(CutStatistics a, CutStatistics b, string what, string x, string y)
    {
        if (!string.Equals(x, y, StringComparison.Ordinal))
            throw new StatisticsMismatchException(
                $"Statistics '{a.Origin}' and '{b.Origin}' cannot be merged: their {what} differs ('{x}' vs '{y}'). Merge only files computed with the same model, cut and dtype.");
    }

    /// <summary>Throws <see cref="StatisticsMismatchException"/> unless these statistics were computed on the model with fingerprint <paramref name="modelIdentity"/>.</summary>
    /// <param name="modelIdentity">The fingerprint of the model about to be pruned.</param>
    /// <param name="modelName">The model's name or folder, for the message.</param>
    public void RequireModel(string modelIdentity, string modelName)
    {
        ArgumentNullException.ThrowIfNull(modelIdentity);
        if (!string.Equals(modelIdentity, ModelIdentity, StringComparison.Ordinal))
            throw new StatisticsMismatchException(
                $"Statistics '{Origin}' were computed on a different model (fingerprint {ModelIdentity[..Math.Min(16, ModelIdentity.Length)]}…) than '{modelName}' ({modelIdentity[..Math.Min(16, modelIdentity.Length)]}…).");
    }

    /// <summary>Solves for T with the least-squares estimator's solver (<see cref="LeastSquaresEstimator"/>) from these sums.</summary>
    /// <param name="options">Ridge, structure, underdetermined policy; defaults when null. Diagnostic rows are not
    /// available from sums, so no cosine figures are reported.</param>
    /// <param name="cancellationToken">Checked before the solve.</param>
    /// <exception cref="PruningException">No tokens, fewer tokens than d without <see cref="LeastSquaresOptions.AllowUnderdetermined"/>,
    /// non-finite sums or a non-finite solution.</exception>
    public TransformEstimate Solve(LeastSquaresOptions? options = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        options ??= new LeastSquaresOptions();
        options.Validate();
        cancellationToken.ThrowIfCancellationRequested();
        var clock = Stopwatch.StartNew();
        FitInputs.RequireTokens(Cut, Tokens);
        var notes = new List<string> { $"structure {options.Structure}", $"solved from merged statistics: {Origin}" };
        double ridge = options.Ridge;
        using var scope = NewDisposeScope();
        if (options.Structure == TransformStructure.General && Tokens < HiddenSize)
        {
            if (!options.AllowUnderdetermined)
                throw new PruningException(
                    $"Cut {Cut}: only {Tokens} valid calibration tokens for hidden size {HiddenSize}; least squares needs at least {HiddenSize}. Add calibration shards, or allow an underdetermined fit.");
            double extra = LeastSquaresFit.UnderdeterminedRelativeRidge * Gram.diagonal().mean().item<double>();
            ridge += extra;
            notes.Add($"underdetermined ({Tokens} tokens < d = {HiddenSize}): added ridge {extra:G3}");
        }
        if (!Gram.isfinite().all().item<bool>() || !Cross.isfinite().all().item<bool>())
            throw new PruningException($"Cut {Cut}: the statistics XᵀX and XᵀZ are NaN or infinite; no finite transform can be fitted.");
        var solution = LeastSquaresSolver.Solve(Gram, Cross, ridge, options.Structure);
        var transform = solution.Transform.to(ScalarType.Float64, CPU);
        FitInputs.RequireFiniteTransform(Cut, transform, "least-squares");
        double z = TargetSquaredNorm;
        double? residual = z > 0 ? Math.Sqrt(_sums.ResidualSquaredNorm(transform) / z) : null;
        var report = new EstimatorReport("lstsq", Tokens, clock.Elapsed, residual, solution.ConditionEstimate, solution.Damping,
            solution.UsedPseudoInverse, Notes: notes);
        return new TransformEstimate(transform.MoveToOuterDisposeScope(), report);
    }

    /// <summary>Writes the statistics as one safetensors file (float64 sums; metadata: format, model fingerprint, cut, d,
    /// activation dtype, token count), via a temporary sibling renamed when complete.</summary>
    /// <param name="path">The file to write.</param>
    /// <param name="overwrite">Replace an existing file; otherwise an existing file is an error.</param>
    /// <param name="cancellationToken">Checked before the rename.</param>
    /// <exception cref="IOException">The file exists and <paramref name="overwrite"/> is false, or writing failed.</exception>
    public void Save(string path, bool overwrite = false, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new IOException($"Statistics path '{full}' is a folder; expected a file name.");
        if (File.Exists(full) && !overwrite) throw new IOException($"Statistics file '{full}' already exists; pass overwrite (CLI: --overwrite) to replace it.");
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>
        {
            ["xtx"] = Gram,
            ["xtz"] = Cross,
            ["z_squared"] = torch.tensor(new[] { TargetSquaredNorm }, ScalarType.Float64),
            ["tokens"] = torch.tensor(new[] { Tokens }, ScalarType.Int64),
            ["sequences"] = torch.tensor(new[] { Sequences }, ScalarType.Int64),
            ["distance_sum"] = torch.tensor(new[] { DistanceSum }, ScalarType.Float64),
            ["last_token_distance_sum"] = torch.tensor(new[] { LastTokenDistanceSum }, ScalarType.Float64),
        };
        var inv = CultureInfo.InvariantCulture;
        var metadata = new Dictionary<string, string>
        {
            ["replaceme_format"] = FormatName,
            ["format_version"] = FormatVersion.ToString(inv),
            ["model_identity"] = ModelIdentity,
            ["cut"] = $"{Cut.Start}:{Cut.End}",
            ["hidden_size"] = HiddenSize.ToString(inv),
            ["activation_dtype"] = ActivationDType,
            ["tokens"] = Tokens.ToString(inv),
            ["library_version"] = typeof(CutStatistics).Assembly.GetName().Version?.ToString(3) ?? "unknown",
        };
        cancellationToken.ThrowIfCancellationRequested();
        SafetensorsWriter.WriteSingleFile(full, tensors, metadata, cancellationToken);
    }

    /// <summary>Reads a statistics file written by <see cref="Save"/>, validating its metadata against its tensors.</summary>
    /// <exception cref="CheckpointFormatException">The file is missing, not a statistics file, of another format version,
    /// or its metadata and tensors disagree; the message names the file and the field.</exception>
    public static CutStatistics Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        TorchRuntime.EnsureLoaded();
        var full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new CheckpointFormatException($"Statistics file '{full}' does not exist.");
        using var reader = SafetensorsReader.Open(full);
        var meta = reader.Metadata;
        string Meta(string key) => meta.TryGetValue(key, out var v) && !string.IsNullOrEmpty(v)
            ? v : throw new CheckpointFormatException($"Statistics file '{full}' lacks the metadata entry '{key}'.");
        if (Meta("replaceme_format") != FormatName)
            throw new CheckpointFormatException($"'{full}' is not a ReplaceMe statistics file (replaceme_format '{meta["replaceme_format"]}', expected '{FormatName}').");
        if (Meta("format_version") != FormatVersion.ToString(CultureInfo.InvariantCulture))
            throw new CheckpointFormatException($"Statistics file '{full}' has format_version {meta["format_version"]}; this library reads {FormatVersion}.");
        var cutParts = Meta("cut").Split(':');
        if (cutParts.Length != 2 || !int.TryParse(cutParts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int start)
            || !int.TryParse(cutParts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int end) || end <= start || start < 1)
            throw new CheckpointFormatException($"Statistics file '{full}': metadata 'cut' must be START:END with 1 ≤ START < END, got '{meta["cut"]}'.");
        if (!int.TryParse(Meta("hidden_size"), NumberStyles.None, CultureInfo.InvariantCulture, out int d) || d <= 0)
            throw new CheckpointFormatException($"Statistics file '{full}': metadata 'hidden_size' must be a positive integer, got '{meta["hidden_size"]}'.");
        Tensor Get(string name, ScalarType type, long[] shape)
        {
            if (!reader.Contains(name)) throw new CheckpointFormatException($"Statistics file '{full}' lacks the tensor '{name}'.");
            var info = reader.GetInfo(name);
            if (!info.Shape.SequenceEqual(shape) || info.DType != (type == ScalarType.Float64 ? "F64" : "I64"))
                throw new CheckpointFormatException(
                    $"Statistics file '{full}': tensor '{name}' is {info.DType} [{string.Join(", ", info.Shape)}], expected {(type == ScalarType.Float64 ? "F64" : "I64")} [{string.Join(", ", shape)}].");
            return reader.Read(name);
        }
        var stats = new CutStatistics(new BlockCut(start, end), d, Meta("model_identity"), Meta("activation_dtype"), full);
        try
        {
            using var scope = NewDisposeScope();
            long tokens = Get("tokens", ScalarType.Int64, [1]).item<long>();
            if (tokens < 0 || Meta("tokens") != tokens.ToString(CultureInfo.InvariantCulture))
                throw new CheckpointFormatException($"Statistics file '{full}': metadata tokens '{meta["tokens"]}' disagree with the tensor 'tokens' ({tokens}).");
            stats._sums.AddSums(Get("xtx", ScalarType.Float64, [d, d]), Get("xtz", ScalarType.Float64, [d, d]),
                Get("z_squared", ScalarType.Float64, [1]).item<double>(), tokens);
            stats.Sequences = Get("sequences", ScalarType.Int64, [1]).item<long>();
            stats.DistanceSum = Get("distance_sum", ScalarType.Float64, [1]).item<double>();
            stats.LastTokenDistanceSum = Get("last_token_distance_sum", ScalarType.Float64, [1]).item<double>();
            return stats;
        }
        catch
        {
            stats.Dispose();
            throw;
        }
    }

    /// <summary>Frees the sums.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _sums.Dispose();
    }
}
