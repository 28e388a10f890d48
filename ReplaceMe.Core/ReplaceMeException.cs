namespace ReplaceMe.Core;

/// <summary>Base type of every error ReplaceMe.Core raises for bad input or an unusable environment.</summary>
public class ReplaceMeException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ReplaceMeException() { }
    /// <summary>Creates the exception with a message.</summary>
    public ReplaceMeException(string message) : base(message) { }
    /// <summary>Creates the exception with a message and a cause.</summary>
    public ReplaceMeException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>A checkpoint, config, tokenizer or data file is missing, truncated or malformed. The message names the file or key.</summary>
public class CheckpointFormatException : ReplaceMeException
{
    /// <summary>Creates the exception.</summary>
    public CheckpointFormatException() { }
    /// <summary>Creates the exception with a message.</summary>
    public CheckpointFormatException(string message) : base(message) { }
    /// <summary>Creates the exception with a message and a cause.</summary>
    public CheckpointFormatException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>A model type, dtype or option combination is not supported.</summary>
public class UnsupportedModelException : ReplaceMeException
{
    /// <summary>Creates the exception.</summary>
    public UnsupportedModelException() { }
    /// <summary>Creates the exception with a message.</summary>
    public UnsupportedModelException(string message) : base(message) { }
    /// <summary>Creates the exception with a message and a cause.</summary>
    public UnsupportedModelException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>Pruning cannot proceed: bad cut, too little calibration data, non-finite activations or transform.</summary>
public class PruningException : ReplaceMeException
{
    /// <summary>Creates the exception.</summary>
    public PruningException() { }
    /// <summary>Creates the exception with a message.</summary>
    public PruningException(string message) : base(message) { }
    /// <summary>Creates the exception with a message and a cause.</summary>
    public PruningException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>TorchSharp's native backend could not be loaded.</summary>
public class TorchLoadException : ReplaceMeException
{
    /// <summary>Creates the exception.</summary>
    public TorchLoadException() { }
    /// <summary>Creates the exception with a message.</summary>
    public TorchLoadException(string message) : base(message) { }
    /// <summary>Creates the exception with a message and a cause.</summary>
    public TorchLoadException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// An allocation failed, or would certainly fail: the model's weights (or another large buffer) do not fit in the
/// memory of the device. The message says how much was needed, how much the device has, and what to do.
/// </summary>
public class InsufficientModelMemoryException : ReplaceMeException
{
    /// <summary>Creates the exception.</summary>
    public InsufficientModelMemoryException() { }
    /// <summary>Creates the exception with a message.</summary>
    public InsufficientModelMemoryException(string message) : base(message) { }
    /// <summary>Creates the exception with a message and a cause.</summary>
    public InsufficientModelMemoryException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Bytes the failed step needed (0 when unknown).</summary>
    public long RequiredBytes { get; init; }

    /// <summary>Bytes the device has in all (physical memory or the container's limit for the CPU; 0 when unknown).</summary>
    public long DeviceBytes { get; init; }

    /// <summary>True for the exceptions an allocation failure surfaces as: .NET's <see cref="OutOfMemoryException"/> and
    /// LibTorch's allocator errors, which TorchSharp raises as <see cref="System.Runtime.InteropServices.ExternalException"/>
    /// ("not enough memory", <c>std::bad_alloc</c>, "CUDA out of memory").</summary>
    /// <param name="exception">Any exception.</param>
    public static bool IsAllocationFailure(Exception exception) => exception switch
    {
        OutOfMemoryException => true,
        System.Runtime.InteropServices.ExternalException e => e.Message.Contains("not enough memory", StringComparison.OrdinalIgnoreCase)
            || e.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase)
            || e.Message.Contains("bad_alloc", StringComparison.Ordinal)
            || e.Message.Contains("failed to allocate", StringComparison.OrdinalIgnoreCase),
        _ => false,
    };
}

/// <summary>
/// The model computed NaN or infinite values where a result was needed (generation logits, evaluation
/// log-probabilities): its weights are corrupt or the compute dtype overflowed. The message says where.
/// </summary>
public class NonFiniteOutputException : ReplaceMeException
{
    /// <summary>Creates the exception.</summary>
    public NonFiniteOutputException() { }
    /// <summary>Creates the exception with a message.</summary>
    public NonFiniteOutputException(string message) : base(message) { }
    /// <summary>Creates the exception with a message and a cause.</summary>
    public NonFiniteOutputException(string message, Exception innerException) : base(message, innerException) { }
}
