using ReplaceMe.Core.Checkpoints;

namespace ReplaceMe.Core.Modeling;

/// <summary>How <see cref="DecoderModel.SaveGguf"/> writes a GGUF file.</summary>
public sealed record GgufExportOptions
{
    /// <summary>Storage of the weight matrices (default <see cref="GgufDType.F16"/>, as llama.cpp's converter).</summary>
    public GgufDType DType { get; init; } = GgufDType.F16;

    /// <summary>Replace an existing file at the target path. Default false: an existing file is an error.</summary>
    public bool Overwrite { get; init; }

    /// <summary>Alignment of the tensor data in bytes (<c>general.alignment</c>): a power of two, multiple of 8; default 32.</summary>
    public int Alignment { get; init; } = 32;

    /// <summary><c>general.name</c>; null uses the source folder's name (or the model type).</summary>
    public string? Name { get; init; }

    /// <summary>
    /// Folder with the tokenizer files (<c>tokenizer.model</c> or <c>tokenizer.json</c>, <c>tokenizer_config.json</c>);
    /// null uses <see cref="DecoderModel.SourceDirectory"/>.
    /// </summary>
    public string? TokenizerDirectory { get; init; }

    /// <summary>
    /// Extra string keys written as they are, e.g. provenance under <c>replaceme.*</c> or <c>general.description</c>.
    /// A key the exporter writes itself is an error.
    /// </summary>
    public IReadOnlyDictionary<string, string> ExtraMetadata { get; init; } = new Dictionary<string, string>();
}
