using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ReplaceMe.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>How a checkpoint's weights are held while it runs.</summary>
public enum ModelResidency
{
    /// <summary>In memory when the weights fit the memory budget (<see cref="TransformerLoader.FitsInMemory"/>), streamed otherwise.</summary>
    Auto,

    /// <summary>Every weight in memory (<see cref="DecoderModel"/>).</summary>
    InMemory,

    /// <summary>At most one block resident, read from the checkpoint as it runs (<see cref="StreamedDecoderModel"/>).</summary>
    Streamed,
}

/// <summary>
/// Opens a checkpoint folder as an in-memory <see cref="DecoderModel"/> or a <see cref="StreamedDecoderModel"/>, chosen
/// explicitly or from a memory budget (docs/streaming.md).
/// </summary>
public static partial class TransformerLoader
{
    /// <summary>
    /// Share of the memory budget the in-memory weights may take; the rest is left for activations, statistics and the fold.
    /// (A whole-model prune of a Llama-3.2-1B-shaped checkpoint peaked at 1.73× its float32 weights: docs/benchmarks.md, "stream-prune".)
    /// </summary>
    public const double InMemoryWeightShare = 0.6;

    /// <summary>
    /// True when the weights of <paramref name="config"/> in <paramref name="dtype"/> take at most
    /// <see cref="InMemoryWeightShare"/> of <paramref name="budgetBytes"/>.
    /// </summary>
    /// <param name="config">The architecture.</param>
    /// <param name="dtype">Compute dtype.</param>
    /// <param name="budgetBytes">Memory budget in bytes (positive).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="budgetBytes"/> is not positive.</exception>
    public static bool FitsInMemory(ModelConfig config, ScalarType dtype, long budgetBytes)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(budgetBytes);
        return DecoderModel.WeightBytes(config, dtype) <= budgetBytes * InMemoryWeightShare;
    }

    /// <summary>
    /// Opens <paramref name="directory"/> in the requested residency. With <see cref="ModelResidency.Auto"/>, the model is
    /// streamed when its weights in the compute dtype do not fit <paramref name="maxMemoryBytes"/> (see
    /// <see cref="FitsInMemory"/>; null means the machine's memory on the CPU, and in-memory on other devices). The choice
    /// and its reason are logged.
    /// </summary>
    /// <param name="directory">Hugging Face checkpoint folder.</param>
    /// <param name="options">Device and compute dtype; CPU float32 when null.</param>
    /// <param name="residency">In memory, streamed, or chosen from the budget.</param>
    /// <param name="maxMemoryBytes">Memory budget in bytes, or null.</param>
    /// <param name="logger">Receives the choice and the load lines.</param>
    /// <returns>A <see cref="DecoderModel"/> or a <see cref="StreamedDecoderModel"/>; the caller disposes it.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxMemoryBytes"/> is not positive.</exception>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="CheckpointFormatException">The checkpoint is malformed or does not match its config.</exception>
    /// <exception cref="UnsupportedModelException">The model type, RoPE scaling or dtype is not supported.</exception>
    /// <exception cref="InsufficientModelMemoryException">In memory was requested and the weights do not fit the machine.</exception>
    public static ITransformerAdapter Load(
        string directory, ModelLoadOptions? options = null, ModelResidency residency = ModelResidency.Auto,
        long? maxMemoryBytes = null, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (maxMemoryBytes is long m) ArgumentOutOfRangeException.ThrowIfNegativeOrZero(m, nameof(maxMemoryBytes));
        logger ??= NullLogger.Instance;
        options ??= new ModelLoadOptions();
        var choice = Choose(directory, options, residency, maxMemoryBytes, out string reason);
        LogChoice(logger, choice, reason);
        return choice == ModelResidency.Streamed
            ? StreamedDecoderModel.Open(directory, options, logger)
            : DecoderModel.FromPretrained(directory, options, logger);
    }

    /// <summary>The residency <see cref="Load"/> would use, with the reason in words.</summary>
    /// <param name="directory">Hugging Face checkpoint folder (only its config.json is read).</param>
    /// <param name="options">Device and compute dtype; CPU float32 when null.</param>
    /// <param name="residency">In memory, streamed, or chosen from the budget.</param>
    /// <param name="maxMemoryBytes">Memory budget in bytes, or null (the machine's memory on the CPU).</param>
    /// <param name="reason">Why, for logs and messages.</param>
    public static ModelResidency Choose(
        string directory, ModelLoadOptions? options, ModelResidency residency, long? maxMemoryBytes, out string reason)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        options ??= new ModelLoadOptions();
        if (residency != ModelResidency.Auto)
        {
            reason = "requested";
            return residency;
        }
        var full = Path.GetFullPath(directory);
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"Model folder '{full}' does not exist.");
        var config = ModelConfigJson.Load(Path.Combine(full, HfCheckpointFolder.ConfigFileName));
        long weights = DecoderModel.WeightBytes(config, options.DType);
        long? budget = maxMemoryBytes ?? (options.ResolvedDevice.type == DeviceType.CPU && MemoryGuard.CpuBytes > 0 ? MemoryGuard.CpuBytes : null);
        if (budget is not long b)
        {
            reason = "no memory budget given for a non-CPU device";
            return ModelResidency.InMemory;
        }
        string what = maxMemoryBytes is null ? "this machine's memory" : "the memory budget";
        bool fits = FitsInMemory(config, options.DType, b);
        reason = $"its weights as {options.DType} take {MemoryGuard.Describe(weights)}, {(fits ? "within" : "more than")} " +
            $"{InMemoryWeightShare * 100:F0}% of {what} ({MemoryGuard.Describe(b)})";
        return fits ? ModelResidency.InMemory : ModelResidency.Streamed;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Model residency: {Residency} ({Reason})")]
    private static partial void LogChoice(ILogger logger, ModelResidency residency, string reason);
}
