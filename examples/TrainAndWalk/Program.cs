// Train an MLP to the manifold of global minima M = H⁻¹(0) and walk on it (Cooper, "The loss landscape of
// overparameterized neural networks", Theorems 2.1 and 4.1): with n parameters and ℓd ≤ n constraints, Gauss–Newton
// reaches a point where L is zero in float64, the certificate finds rank J = ℓd and dim M = n − ℓd, and a random walk
// along M travels while max|H| stays at the rounding level.
using LossLandscape;
using LossLandscape.Data;
using LossLandscape.Models;
using LossLandscape.Models.Activations;

// 20 of Fisher's iris flowers (every seventh), the species one-hot: d = 20 points with ℓ = 3 targets, ℓd = 60.
var iris = Landscape.LoadData("builtin:iris", TargetSpec.Classes("species"));
var data = iris.Subset(Enumerable.Range(0, 20).Select(i => 7 * i));

// A smooLU MLP 4 → 32 → 3 on standardized inputs: n = (32·4 + 32) + (3·32 + 3) = 259 > ℓd.
var mlp = new Mlp(data.InputDim, [new HiddenLayer(32, new SmooLU())], data.OutputDim).WithScaling(InputScaling.Standardize(data));
using var landscape = Landscape.For(new NetworkPoint(mlp, mlp.InitialParameters(seed: 0)), data);
Console.WriteLine($"n = {landscape.ParameterCount}, ℓd = {landscape.Constraints}");

// Gauss–Newton / Levenberg–Marquardt (the default optimizer of Landscape.Train) until L is zero in float64.
var run = landscape.Train(new(MaxIterations: 50));
Console.WriteLine($"training: {run.Status} after {run.Steps} steps, L {run.InitialLoss:G4} → {run.BestLoss:G4} (target {run.TargetLoss:G3}), {run.Seconds:0.00} s");

var certificate = landscape.Certify();
var h = certificate.Hessian;
Console.WriteLine($"on M: {(certificate.OnManifold ? "yes" : "no")} (max|H| = {certificate.MaxAbsResidual:G3}, tolerance {certificate.OnManifoldTolerance:G3})");
Console.WriteLine($"rank J = {certificate.Jacobian.Rank}, ℓd = {certificate.Constraints}, dim M = n − rank J = {certificate.ManifoldDimension}");
Console.WriteLine($"inertia of ∇²L: {h.Positive} positive, {h.Zero} zero, {h.Negative} negative ({h.Method}; {(h.Decided ? "decided" : "not decided")})");

// Ten tangent steps of length 0.1, each retracted onto M by Gauss–Newton.
var walk = landscape.Walk(new(Steps: 10, StepSize: 0.1));
foreach (var step in walk.Steps)
{
    Console.WriteLine($"walk step {step.Step,2}: max|H| = {step.MaxAbsResidual:G3}, ‖p − p₀‖ = {step.Displacement:G4}, rank J = {step.Rank}");
}
double worst = walk.Steps.Max(s => s.MaxAbsResidual);
Console.WriteLine($"walk: {walk.Status}; max|H| along the walk {worst:G3}; stayed on M: {(worst <= certificate.OnManifoldTolerance ? "yes" : "no")}; travelled {walk.Steps[^1].Displacement:G4} from the trained point");
