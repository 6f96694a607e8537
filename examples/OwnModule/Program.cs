// Your own TorchSharp nn.Module on Fisher's iris data: the loss, the top of the Hessian's spectrum, its density by
// stochastic Lanczos quadrature, its trace and the certificate of the point. The README's "Use from C#" program is the
// first part of this file (a test checks that they agree).
using LossLandscape;
using LossLandscape.Curvature;
using LossLandscape.Geometry;
using LossLandscape.Data;
using static TorchSharp.torch;

// The library sets TorchSharp up on first use (float64, huge pages), so the module below is built in float64; a module
// built before any library call is float32, and Landscape.For converts it to float64 exactly.
var data = Landscape.LoadData("builtin:iris", TargetSpec.Classes("species"));
random.manual_seed(0); // the module's initial weights, for a reproducible run
var module = nn.Sequential(("fc1", nn.Linear(4, 16)), ("tanh", nn.Tanh()), ("fc2", nn.Linear(16, 3)));
using var landscape = Landscape.For(module, data);

Console.WriteLine($"loss L = {landscape.Loss():G6}");
var certificate = landscape.Certify();
Console.WriteLine($"rank J = {certificate.Jacobian.Rank} of ℓd = {certificate.Constraints}; on M: {certificate.OnManifold}");
var top = landscape.Spectrum(new(K: 5));
Console.WriteLine($"top-5 eigenvalues of ∇²L: {string.Join(", ", top.Eigenvalues.Select(v => v.ToString("G6")))} ({top.Status})");

// The rest of the certificate: n, the residual against the on-M tolerance, dim M and the inertia of ∇²L.
var h = certificate.Hessian;
Console.WriteLine($"n = {certificate.N}, d = {certificate.D}, ℓ = {certificate.Outputs}");
Console.WriteLine($"max|H| = {certificate.MaxAbsResidual:G4} against the on-M tolerance {certificate.OnManifoldTolerance:G3}");
Console.WriteLine($"dim ker J = n − rank J = {certificate.KernelDimension}; regular point: {certificate.RegularPoint}");
Console.WriteLine($"inertia of ∇²L: {h.Positive} positive, {h.Zero} zero, {h.Negative} negative ({h.Method}; {(h.Decided ? "decided" : "not decided")})");
Console.WriteLine($"‖∇L‖ = {Math.Sqrt(landscape.Gradient().Sum(g => g * g)):G6}");
Console.WriteLine($"Lanczos residuals ‖Hv − λv‖: {string.Join(", ", top.Residuals!.Select(r => r.ToString("G2")))}; converged: {string.Join(", ", top.Converged)}");

// The density of the whole spectrum (Ghorbani, Krishnan & Xiao 2019), here with 5 probes of 40 steps.
var density = landscape.Spectrum(new(Method: SpectrumMethod.Slq, Slq: new SlqOptions(Steps: 40, ProbeCount: 5))).Slq!;
for (int k = 0; k < density.Moments.Count; k++)
{
    Console.WriteLine($"SLQ tr(H^{k})/n = {density.Moments[k]:G6} ± {density.MomentStandardErrors[k]:G2}");
}

// tr ∇²L: Hutch++ against the exact trace from n Hessian-vector products.
var estimate = landscape.Trace();
var exact = landscape.Trace(new(Method: TraceMethod.Exact));
Console.WriteLine($"trace (Hutch++) = {estimate.Trace:G6} ± {estimate.StandardError:G2} from {estimate.Applications} products");
Console.WriteLine($"trace (exact) = {exact.Trace:G6} from {exact.Applications} products");
