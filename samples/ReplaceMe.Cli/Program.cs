using ReplaceMe.Core.Runtime;
TorchRuntime.EnsureLoaded();
var t = TorchSharp.torch.randn(64, 64);
var r = TorchSharp.torch.linalg.lstsq(t, t);
Console.WriteLine($"{TorchRuntime.LoadMode} {TorchRuntime.PatchedLibraryPath} {t.matmul(t).sum().item<float>()}");
