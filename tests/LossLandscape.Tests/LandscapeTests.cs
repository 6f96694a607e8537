using LossLandscape.Operators;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Paths;
using LossLandscape.Training;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>
/// The facade <see cref="Landscape"/> is a thin layer: each method returns what the library entry point the command
/// calls returns, on the same model and data; it owns only what it made; a float32 module is usable.
/// </summary>
public sealed class LandscapeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-facade-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Every_Measuring_Method_Returns_What_Its_Library_Entry_Point_Returns()
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get("mlp 3-5-3 smoolu");
        using var landscape = Landscape.For(new NetworkPoint(c.Network, c.Parameters), c.Data);
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        var map = new ResidualMap(model, c.Data);

        Same(map.Loss(), landscape.Loss());
        Same(map.Gradient().data<double>().ToArray(), landscape.Gradient());

        var certificate = landscape.Certify();
        var reference = Certificate.Compute(map);
        Assert.Equal((reference.N, reference.Constraints, reference.OnManifold, reference.Jacobian.Rank), (certificate.N, certificate.Constraints, certificate.OnManifold, certificate.Jacobian.Rank));
        Assert.Equal((reference.Hessian.Method, reference.Hessian.Positive, reference.Hessian.Zero, reference.Hessian.Negative), (certificate.Hessian.Method, certificate.Hessian.Positive, certificate.Hessian.Zero, certificate.Hessian.Negative));
        Same(reference.Hessian.Eigenvalues, certificate.Hessian.Eigenvalues);

        var spectrumOptions = new SpectrumOptions(K: 3, Which: SpectrumEnd.Smallest);
        var top = landscape.Spectrum(spectrumOptions);
        var lanczos = HessianSpectrum.Compute(map, spectrumOptions);
        Same(lanczos.Eigenvalues, top.Eigenvalues);
        Assert.Equal(lanczos.Converged, top.Converged);
        Assert.Equal(lanczos.Products, top.Products);

        var slq = new SlqOptions(Steps: 8, ProbeCount: 2);
        Same(StochasticLanczosQuadrature.Estimate(new GaussNewtonOperator(map), slq).Moments,
            landscape.Spectrum(new(Method: SpectrumMethod.Slq, Operator: CurvatureKind.GaussNewton, Slq: slq)).Slq!.Moments);

        Same(HutchPlusPlus.Trace(new HessianOperator(map)).Trace, landscape.Trace().Trace);
        Same(Hutchinson.Trace(new HessianOperator(map)).Trace, landscape.Trace(new(TraceMethod.Hutchinson)).Trace);
        var exact = landscape.Trace(new(TraceMethod.Exact, CurvatureKind.GaussNewton));
        Same(new GaussNewtonOperator(map).ExactTrace(), exact.Trace);
        Assert.Equal((SolverStatus.Converged, (long)map.ParameterCount), (exact.Status, exact.Applications));

        var options = new SliceOptions([SliceDirection.Tangent], Grid: 5, Range: 0.5);
        Same(LossSlice.Compute(map, options).Loss.Cast<double>().ToArray(), landscape.Slice(options).Loss.Cast<double>().ToArray());
    }

    [Fact]
    public void Train_And_Walk_Move_The_Point_As_The_Trainer_And_The_Walk_Do()
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get("mlp 3-5-1 smoolu"); // n = 26 > ℓd = 7: Gauss–Newton reaches M
        using var landscape = Landscape.For(new NetworkPoint(c.Network, c.Parameters), c.Data);
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        var map = new ResidualMap(model, c.Data);

        var run = landscape.Train(new(MaxIterations: 30));
        using var optimizer = new GaussNewton();
        var reference = Trainer.Run(map, optimizer, new TrainingOptions(30));
        Assert.Equal(SolverStatus.Converged, run.Status);
        Assert.Equal((reference.Status, reference.Steps, reference.Optimizer), (run.Status, run.Steps, run.Optimizer));
        Same(reference.LossHistory, run.LossHistory);
        Same(model.ToArray(), ParameterVector.Get(landscape.Model).data<double>().ToArray()); // both left at the best point

        var walk = landscape.Walk(new(Steps: 2));
        var defaults = new Landscape.WalkOptions();
        var referenceWalk = ManifoldWalk.Run(map, new Paths.WalkOptions(2, defaults.StepSize, defaults.Seed, defaults.Tolerance * Math.Max(1, c.Data.MaxAbsTarget())));
        Assert.Equal(referenceWalk.Status, walk.Status);
        Same(referenceWalk.Steps.Select(s => s.Displacement).ToArray(), walk.Steps.Select(s => s.Displacement).ToArray());
        Same(model.ToArray(), ParameterVector.Get(landscape.Model).data<double>().ToArray()); // both left at the end of the walk
    }

    [Fact]
    public void A_Float32_Module_Is_Converted_To_Float64_And_Its_Loss_Is_The_Network_Formula()
    {
        // Before the fix a module built in float32 failed at the first Loss() deep in libtorch: "mat1 and mat2 must have the same dtype".
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        manual_seed(3);
        var first = nn.Linear(3, 4, dtype: ScalarType.Float32);
        var second = nn.Linear(4, 2, dtype: ScalarType.Float32);
        var module = nn.Sequential(("l1", first), ("act", nn.Tanh()), ("l2", second));
        double[] Values(Tensor t) => t.detach().to_type(ScalarType.Float64).data<double>().ToArray();
        double[] w1 = Values(first.weight!), b1 = Values(first.bias!), w2 = Values(second.weight!), b2 = Values(second.bias!);
        var data = Cases.Data(5, 3, 2, 4);

        using var landscape = Landscape.For(module, data);

        Assert.All(module.parameters(), p => Assert.Equal(ScalarType.Float64, p.dtype));
        Assert.Equal(4 * 3 + 4 + 2 * 4 + 2, landscape.ParameterCount);
        // L = Σᵢⱼ (W₂ tanh(W₁xᵢ + b₁) + b₂ − yᵢ)ⱼ², float32 weights being exact in float64.
        double loss = 0;
        for (int i = 0; i < data.Count; i++)
        {
            var hidden = Enumerable.Range(0, 4).Select(k => Math.Tanh(b1[k] + Enumerable.Range(0, 3).Sum(m => w1[k * 3 + m] * data.Input(i, m)))).ToArray();
            for (int j = 0; j < 2; j++)
            {
                double r = b2[j] + Enumerable.Range(0, 4).Sum(k => w2[j * 4 + k] * hidden[k]) - data.Target(i, j);
                loss += r * r;
            }
        }
        Same(loss, landscape.Loss());
        Assert.Equal(landscape.ParameterCount, landscape.Gradient().Length);
    }

    [Fact]
    public void Dispose_Releases_The_Model_It_Made_Keeps_The_Callers_And_Refuses_Further_Calls()
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get("mlp 3-5-1 smoolu");
        var made = Landscape.For(new NetworkPoint(c.Network, c.Parameters), c.Data);
        var madeModel = Assert.IsType<NetworkModel>(made.Model);
        made.Dispose();
        Assert.True(madeModel.Parameters.IsInvalid);
        Assert.Throws<ObjectDisposedException>(() => made.Loss());
        made.Dispose(); // a second Dispose is harmless

        using var callers = new NetworkModel(c.Network, c.Parameters);
        var borrowed = Landscape.For(callers, c.Data);
        borrowed.Dispose();
        Assert.False(callers.Parameters.IsInvalid);
        Same(new ResidualMap(callers, c.Data).Loss(), Landscape.For(callers, c.Data).Loss());
    }

    [Fact]
    public void Load_Reads_A_Model_File_And_LoadData_Reads_What_Data_Reads()
    {
        var data = Landscape.LoadData("builtin:iris", TargetSpec.Classes("species"));
        Assert.Equal((150, 4, 3, "builtin:iris"), (data.Count, data.InputDim, data.OutputDim, data.Source));
        Assert.Equal(ScalarType.Float64, get_default_dtype());
        Assert.Equal(1, Landscape.LoadData("builtin:iris").OutputDim); // default: the last column is the target

        var mlp = new Mlp(4, [new HiddenLayer(3, Models.Activations.ActivationRegistry.Default)], 3);
        var point = new NetworkPoint(mlp, mlp.InitialParameters(7));
        var path = Path.Combine(_dir, "model.json");
        ModelFile.Save(path, point);
        using var loaded = Landscape.Load(path, data);
        using var direct = Landscape.For(point, data);
        Same(direct.Loss(), loaded.Loss());
        Assert.Throws<ModelFormatException>(() => Landscape.Load(Path.Combine(_dir, "missing.json"), data));
        Assert.Throws<DataFormatException>(() => Landscape.LoadData("builtin:nonesuch"));
    }

    private static void Same(double expected, double actual) =>
        Assert.True(Math.Abs(expected - actual) <= Tolerances.ExactAgreement * Math.Max(1, Math.Abs(expected)), $"{actual:R} ≠ {expected:R}");

    private static void Same(IReadOnlyList<double> expected, IReadOnlyList<double> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Same(expected[i], actual[i]);
        }
    }
}
