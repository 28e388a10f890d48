namespace ReplaceMe.Core.Checkpoints;

/// <summary>How the weight matrices of a GGUF export are stored. One-dimensional tensors (norms, biases, RoPE factors)
/// are always stored as 32-bit floats, as llama.cpp's own converter does.</summary>
public enum GgufDType
{
    /// <summary>32-bit IEEE floats (ggml type F32, file type ALL_F32): the exact weights of the model.</summary>
    F32,

    /// <summary>16-bit IEEE floats (ggml type F16, file type MOSTLY_F16), rounded to nearest even.</summary>
    F16,

    /// <summary>bfloat16 (ggml type BF16, file type MOSTLY_BF16), rounded to nearest even.</summary>
    BF16,

    /// <summary>
    /// 8-bit blocks (ggml type Q8_0, file type MOSTLY_Q8_0): every 32 consecutive values of a row share one float16 scale
    /// <c>d = max|x| / 127</c> and are stored as <c>round(x / d)</c> in [-127, 127] (34 bytes per 32 values). A matrix whose
    /// rows are not a multiple of 32 long is stored as F16 instead.
    /// </summary>
#pragma warning disable CA1707 // the format's own name
    Q8_0,
#pragma warning restore CA1707
}
