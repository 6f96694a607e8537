// A network trained in PyTorch and saved there with torch.jit.save (scripted or traced), on its images, with PyTorch's
// CrossEntropyLoss(): the loss, the top of the Hessian's spectrum with residuals, and the trace with its standard error.
//   dotnet run --project examples/OwnTorchScript -c Release -- net.pt builtin:fashion-mnist 0:1000
using LossLandscape;
using LossLandscape.Problem;
using static TorchSharp.torch;

string modelPath = args.Length > 0 ? args[0] : "net.pt";
string source = args.Length > 1 ? args[1] : "builtin:fashion-mnist";
string? rows = args.Length > 2 ? args[2] : "0:1000";

// The rows are read from the files batch by batch (Fashion-MNIST: [1, 28, 28] images and their class labels).
var data = Landscape.OpenData(source, rows);
using var files = data as IDisposable; // closes the array files at the end
var module = jit.load<Tensor, Tensor>(modelPath);
using var landscape = Landscape.For(module, data, LossFunction.Parse("cross-entropy"));

Console.WriteLine($"n = {landscape.ParameterCount}, d = {data.Count}, ℓ = {data.OutputDim}");
Console.WriteLine($"loss L = {landscape.Loss():R}");
Console.WriteLine($"‖∇L‖ = {Math.Sqrt(landscape.Gradient().Sum(g => g * g)):R}");
var top = landscape.Spectrum(new(K: 3));
Console.WriteLine($"top-3 eigenvalues of ∇²L: {string.Join(", ", top.Eigenvalues.Select(v => v.ToString("R")))} ({top.Status})");
Console.WriteLine($"residuals ‖Hv − λv‖: {string.Join(", ", top.Residuals!.Select(r => r.ToString("G2")))}");
var trace = landscape.Trace();
Console.WriteLine($"trace (Hutch++) = {trace.Trace:R} ± {trace.StandardError:G3} from {trace.Applications} products");
