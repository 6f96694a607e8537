using LossLandscape.Operators;
using System.Text.Json;
using LossLandscape.Cli;
using LossLandscape.Cli.Commands;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using LossLandscape.Paths;
using LossLandscape.Reports;
using LossLandscape.Training;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>
/// The JSON contract of the converted commands: every field name each command wrote before it moved onto
/// <see cref="LandscapeCommand{TSettings, TResult}"/> and the serializer is still written, with the same shape
/// (independent checks read these names). New fields are allowed; a renamed or dropped one fails here.
/// </summary>
public sealed class CliJsonTests : IDisposable
{
    /// <summary>Small enough for a second-long construction, walk and slice: d = 12 Gaussian points in ℝ³, ℓ = 1.</summary>
    private static readonly string[] Data = ["--data", "synthetic:12,3,1,4"];

    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-json-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    private static JsonElement Run(string json, params string[] args)
    {
        var (code, output, err) = CliTests.Run(args);
        Assert.True(code == 0, output + err);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        return doc.RootElement.Clone();
    }

    /// <summary>Asserts that <paramref name="element"/> is an object holding every one of <paramref name="names"/>.</summary>
    private static void AssertFields(JsonElement element, string what, params string[] names)
    {
        Assert.Equal(JsonValueKind.Object, element.ValueKind);
        var present = element.EnumerateObject().Select(p => p.Name).ToHashSet();
        var missing = names.Where(n => !present.Contains(n)).ToArray();
        Assert.True(missing.Length == 0, $"{what}: missing {string.Join(", ", missing)}; has {string.Join(", ", present)}");
    }

    [Fact]
    public void Info_Evaluate_Construct_Walk_Slice_Train_Keep_Their_Json_Field_Names()
    {
        var (code, output, err) = CliTests.Run(["init", .. Data, "--hidden", "5", "--out", P("m.json")]);
        Assert.True(code == 0, output + err);

        var info = Run(P("info.json"), "info", "--model", P("m.json"), "--json", P("info.json"));
        AssertFields(info, "info", "model", "format", "inputDim", "outputDim", "n", "inputScaling", "layers", "activations");
        Assert.False(info.TryGetProperty("vertices", out _), "an MLP's info has no DAG fields");
        foreach (var layer in info.GetProperty("layers").EnumerateArray())
        {
            AssertFields(layer, "info.layers[]", "in", "out", "activation", "parameters");
        }
        Assert.Equal("linear", info.GetProperty("layers")[1].GetProperty("activation").GetString());
        AssertFields(info.GetProperty("activations")[0], "info.activations[]", "name", "rectified", "smooth");
        Assert.Equal(26, info.GetProperty("n").GetInt32()); // (5·3+5) + (1·5+1)

        var evaluate = Run(P("evaluate.json"), ["evaluate", "--model", P("m.json"), .. Data, "--json", P("evaluate.json")]);
        AssertFields(evaluate, "evaluate", "n", "d", "outputs", "constraints", "exponent", "loss", "maxAbsResidual", "gradientNorm");
        Assert.Equal(2, evaluate.GetProperty("exponent").GetDouble());
        Assert.Equal(12, evaluate.GetProperty("constraints").GetInt32());

        var construct = Run(P("construct.json"), ["construct", .. Data, "--out", P("c.json"), "--json", P("construct.json")]);
        AssertFields(construct, "construct", "model", "data", "d", "outputs", "n", "direction", "relativeMinGap", "scaledMinGap", "scaledRange", "biasFraction",
            "triangularCondition", "amplification", "triangularResidual", "outputLayerSteps", "gaussNewtonSteps", "maxAbsResidual", "goal", "meetsGoal", "seconds");
        Assert.True(construct.GetProperty("meetsGoal").GetBoolean());

        var walk = Run(P("walk.json"), ["walk", "--model", P("c.json"), .. Data, "--steps", "2", "--json", P("walk.json")]);
        AssertFields(walk, "walk", "n", "constraints", "status", "steps");
        Assert.Equal("converged", walk.GetProperty("status").GetString());
        Assert.Equal(3, walk.GetProperty("steps").GetArrayLength());
        foreach (var step in walk.GetProperty("steps").EnumerateArray())
        {
            AssertFields(step, "walk.steps[]", "step", "loss", "maxAbsResidual", "rank", "pathLength", "displacement", "retraction", "gaussNewtonSteps");
        }

        var slice = Run(P("slice.json"), ["slice", "--model", P("c.json"), .. Data, "--directions", "tangent,normal", "--grid", "3", "--range", "0.01", "--out", P("s.svg"), "--json", P("slice.json")]);
        AssertFields(slice, "slice", "directions", "directionNorms", "alphas", "betas", "loss", "centerLoss");
        Assert.Equal(new[] { "tangent", "normal" }, slice.GetProperty("directions").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal(3, slice.GetProperty("loss").GetArrayLength());
        Assert.Equal(3, slice.GetProperty("loss")[0].GetArrayLength()); // rows of numbers, one per α
        Assert.Equal(JsonValueKind.Number, slice.GetProperty("loss")[0][0].ValueKind);

        var train = Run(P("train.json"), ["train", .. Data, "--hidden", "4", "--steps", "2", "--out", P("t.json"), "--json", P("train.json")]);
        AssertFields(train, "train", "model", "data", "n", "d", "outputs", "constraints", "optimizer", "settings", "status", "steps", "evaluations",
            "initialLoss", "finalLoss", "bestLoss", "bestStep", "targetLoss", "seconds", "lossHistory");
        Assert.Equal("stoppedWithoutConvergence", train.GetProperty("status").GetString());
        Assert.Equal(3, train.GetProperty("lossHistory").GetArrayLength());
        Assert.False(train.TryGetProperty("note", out _), "note is written only when the optimizer stalled");
    }

    /// <summary>
    /// spectrum (each method, and the zeros and inertia objects), trace (each method) and certify (with the perturbation
    /// object and the certificate inside it) keep the field names they wrote before they moved onto the command base;
    /// certify does not dump the singular values of J or the n eigenvalues of a dense run, which it never wrote.
    /// </summary>
    [Fact]
    public void Spectrum_Trace_Certify_Keep_Their_Json_Field_Names()
    {
        // A point of M (n = 61, ℓd = 12): the zeros of lanczos smallest and the inertia of gram need one.
        var (code, output, err) = CliTests.Run(["construct", .. Data, "--out", P("c.json")]);
        Assert.True(code == 0, output + err);
        string[] common = ["method", "operator", "which", "n", "d", "outputs", "status", "note", "hessianVectorProducts", "seconds"];
        string[] onManifold = ["onManifold", "maxAbsResidual", "onManifoldTolerance"];
        JsonElement Spectrum(string name, params string[] args) => Run(P(name), ["spectrum", "--model", P("c.json"), .. Data, .. args, "--json", P(name)]);

        var dense = Spectrum("dense.json", "--method", "dense", "--k", "3");
        AssertFields(dense, "spectrum dense", [.. common, "eigenvalues", "converged", "allEigenvalues", "asymmetry"]);
        Assert.Equal(61, dense.GetProperty("allEigenvalues").GetArrayLength());
        Assert.Equal("dense", dense.GetProperty("method").GetString());
        Assert.Equal("largest", dense.GetProperty("which").GetString());

        var gram = Spectrum("gram.json", "--method", "gram", "--k", "3");
        AssertFields(gram, "spectrum gram", [.. common, "eigenvalues", "converged", .. onManifold, "inertia"]);
        AssertFields(gram.GetProperty("inertia"), "spectrum gram.inertia", "positive", "zero", "negative", "decided", "note");

        var lanczos = Spectrum("lanczos.json", "--method", "lanczos", "--k", "3");
        AssertFields(lanczos, "spectrum lanczos", [.. common, "eigenvalues", "converged", "residuals", "iterations"]);
        Assert.Equal("converged", lanczos.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.True, lanczos.GetProperty("converged")[0].ValueKind);

        var smallest = Spectrum("smallest.json", "--method", "lanczos", "--k", "3", "--which", "smallest");
        AssertFields(smallest, "spectrum lanczos smallest", [.. common, "eigenvalues", "converged", .. onManifold, "zeros", "iterations"]);
        AssertFields(smallest.GetProperty("zeros"), "spectrum lanczos smallest.zeros",
            "multiplicity", "bound", "residualTermNorm", "residualTermEstimated", "residualTermSteps", "rank", "constraints", "lowestNonzero", "rule");
        Assert.Equal(61 - 12, smallest.GetProperty("zeros").GetProperty("multiplicity").GetInt32());

        var slq = Spectrum("slq.json", "--method", "slq", "--steps", "10", "--probes", "2", "--grid-points", "50");
        AssertFields(slq, "spectrum slq", [.. common, "sigma", "grid", "density", "moments", "momentStandardErrors", "breakdowns", "options", "quadrature"]);
        AssertFields(slq.GetProperty("options"), "spectrum slq.options", "steps", "probes", "sigma2", "gridPoints", "gridMargin", "seed", "source");
        Assert.Equal(2, slq.GetProperty("quadrature").GetArrayLength());
        AssertFields(slq.GetProperty("quadrature")[0], "spectrum slq.quadrature[]", "nodes", "weights");
        Assert.Equal(50, slq.GetProperty("grid").GetArrayLength());
        Assert.False(slq.TryGetProperty("eigenvalues", out _), "slq writes a density, not eigenvalues");

        foreach (var method in new[] { "hutchinson", "hutch++", "exact" })
        {
            var trace = Run(P("trace.json"), ["trace", "--model", P("c.json"), .. Data, "--method", method, "--json", P("trace.json")]);
            AssertFields(trace, $"trace {method}", "method", "operator", "n", "trace", "standardError", "lowRankPart", "samples", "status", "note", "hessianVectorProducts", "seconds");
            Assert.Equal(method, trace.GetProperty("method").GetString());
        }

        var certify = Run(P("certify.json"), ["certify", "--model", P("c.json"), .. Data, "--method", "dense", "--perturb", "1e-2", "--json", P("certify.json")]);
        AssertCertificate(certify, "certify");
        var perturbation = certify.GetProperty("perturbation");
        AssertFields(perturbation, "certify.perturbation", "epsilon", "norm", "distanceMoved", "gaussNewtonSteps", "certificate", "status");
        Assert.Equal("converged", perturbation.GetProperty("status").GetString());
        AssertCertificate(perturbation.GetProperty("certificate"), "certify.perturbation.certificate");
        Assert.False(perturbation.GetProperty("certificate").TryGetProperty("perturbation", out _), "the certificate after the perturbation has no perturbation of its own");
        var plain = Run(P("plain.json"), ["certify", "--model", P("c.json"), .. Data, "--json", P("plain.json")]);
        AssertCertificate(plain, "certify without --perturb");
        Assert.False(plain.TryGetProperty("perturbation", out _), "perturbation is written only with --perturb");
    }

    /// <summary>A certificate's fields (certify's top level, and the certificate after a perturbation), and no huge arrays.</summary>
    private static void AssertCertificate(JsonElement c, string what)
    {
        AssertFields(c, what, "n", "d", "outputs", "constraints", "loss", "maxAbsResidual", "onManifoldTolerance", "onManifold", "jacobian",
            "manifoldDimension", "kernelDimension", "regularPoint", "hessian", "seconds");
        AssertFields(c.GetProperty("jacobian"), what + ".jacobian",
            "rank", "tolerance", "resolution", "sigmaMax", "sigmaMin", "sigmaNext", "sigmaAbove", "sigmaBelow", "decided", "basis", "note");
        AssertFields(c.GetProperty("hessian"), what + ".hessian", "method", "positive", "zero", "negative", "tolerance", "decided", "note", "eigenvalues");
        Assert.False(c.GetProperty("jacobian").TryGetProperty("singularValues", out _), $"{what}: the singular values of J were never written");
        Assert.False(c.GetProperty("hessian").TryGetProperty("allEigenvalues", out _), $"{what}: the n eigenvalues of a dense run were never written");
        if (c.GetProperty("hessian").GetProperty("method").GetString() == "dense")
        {
            AssertFields(c.GetProperty("hessian"), what + ".hessian (dense)", "residualTermNorm");
        }
        else
        {
            Assert.False(c.GetProperty("hessian").TryGetProperty("residualTermNorm", out _), $"{what}: residualTermNorm is written only where it was computed");
        }
    }

    [Fact]
    public void Info_Of_A_Dag_Keeps_Its_Json_Field_Names()
    {
        var dag = Cases.Dags().First();
        ModelFile.Save(P("dag.json"), new NetworkPoint(dag.Network, dag.Parameters));
        var info = Run(P("info.json"), "info", "--model", P("dag.json"), "--json", P("info.json"));
        AssertFields(info, "info (DAG)", "model", "format", "inputDim", "outputDim", "n", "inputScaling", "vertices", "edges", "levels", "activations");
        Assert.False(info.TryGetProperty("layers", out _), "a DAG's info has no layers");
        Assert.Equal(ModelFile.DagFormat, info.GetProperty("format").GetString());
        Assert.Equal(((DagNetwork)dag.Network).Edges.Count, info.GetProperty("edges").GetInt32());
    }

    [Fact]
    public void Verify_Json_Keeps_Its_Field_Names()
    {
        // The record verify serialises, with two checks; running verify itself is CliTests.Verify_Passes_And_Writes_Json.
        var output = new VerifyOutput(false, [new ClaimCheck("Lemma 3.3", "iris", "1e-13", "≤ 1e-10", true, 0.5), new ClaimCheck("Theorem 2.1", "digits", "3", "= 4", false, 1.5)], null, 2.0);
        using var doc = JsonDocument.Parse(JsonOutput.Serialize(output, LandscapeJsonContext.Default.VerifyOutput));
        AssertFields(doc.RootElement, "verify", "pass", "claims");
        Assert.False(doc.RootElement.GetProperty("pass").GetBoolean());
        foreach (var claim in doc.RootElement.GetProperty("claims").EnumerateArray())
        {
            AssertFields(claim, "verify.claims[]", "claim", "setting", "measured", "expected", "pass", "seconds");
        }
        Assert.Equal("≤ 1e-10", doc.RootElement.GetProperty("claims")[0].GetProperty("expected").GetString()); // not \u2264
    }

    [Fact]
    public void Json_Writes_NaN_And_Infinities_As_Null()
    {
        var output = new EvaluateOutput(5, 3, 1, 3, 2, double.NaN, double.PositiveInfinity, double.NegativeInfinity, "synthetic", 2, 0.25);
        using (var doc = JsonDocument.Parse(JsonOutput.Serialize(output, LandscapeJsonContext.Default.EvaluateOutput)))
        {
            Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("loss").ValueKind);
            Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("maxAbsResidual").ValueKind);
            Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("gradientNorm").ValueKind);
            Assert.Equal(0.25, doc.RootElement.GetProperty("seconds").GetDouble());
        }

        // Inside arrays and arrays of arrays too.
        var slice = new SliceOutput(new SliceResult([SliceDirection.Random], [-1.0, 0, 1], [], new double[,] { { double.NaN }, { 0.0 }, { double.PositiveInfinity } }, [1.0], double.NegativeInfinity), "f.svg", 0);
        using (var doc = JsonDocument.Parse(JsonOutput.Serialize(slice, LandscapeJsonContext.Default.SliceOutput)))
        {
            var loss = doc.RootElement.GetProperty("loss");
            Assert.Equal(JsonValueKind.Null, loss[0][0].ValueKind);
            Assert.Equal(0.0, loss[1][0].GetDouble());
            Assert.Equal(JsonValueKind.Null, loss[2][0].ValueKind);
            Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("centerLoss").ValueKind);
        }

        // double? through the converter the context registers: null, NaN and ±∞ are null; a finite value is its number.
        var converters = LandscapeJsonContext.Default.Options.Converters;
        Assert.Contains(converters, c => c is FiniteDoubleConverter);
        var nullable = Assert.Single(converters.OfType<NullableFiniteDoubleConverter>());
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            foreach (double? v in new double?[] { null, double.NaN, double.PositiveInfinity, double.NegativeInfinity, 1.5 })
            {
                nullable.Write(writer, v, LandscapeJsonContext.Default.Options);
            }
            writer.WriteEndArray();
        }
        Assert.Equal("[null,null,null,null,1.5]", System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
    }
}

/// <summary>Exit codes: only bad input is 2; anything else is a bug, 70, and says so.</summary>
public sealed class CliExitCodeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-exit-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<Exception> BadInput() => new()
    {
        new UsageException("--steps: 0 is not a positive number"),
        new DataFormatException("d.csv:3:2: 'five' in column 'b' is not a number"),
        new ModelFormatException("m.json: 'parameters' has 3 numbers"),
        new LandscapeInputException("last hidden width h = 3 is smaller than d = 5", "options"),
        new FileNotFoundException("input file not found", "d.csv"),
        new DirectoryNotFoundException("no such directory: out/"),
        new AggregateException(new LandscapeInputException("wrapped refusal")),
    };

    public static TheoryData<Exception> Bugs() => new()
    {
        new ArgumentException("expected a vector of length 5, got shape [4]", "v"),
        new ArgumentOutOfRangeException("k", 0, "K must be at least 1"),
        new InvalidOperationException("the leaves hold 3 numbers, the model declares n = 4"),
        new NullReferenceException("Object reference not set to an instance of an object."),
    };

    [Theory]
    [MemberData(nameof(BadInput))]
    public void Bad_Input_Exits_2_With_One_Error_Line(Exception e)
    {
        var stderr = new StringWriter();
        Assert.Equal(LandscapeApp.BadInput, LandscapeApp.Report(e, stderr, debug: false));
        var line = Assert.Single(stderr.ToString().TrimEnd().Split('\n'));
        Assert.StartsWith("landscape: error: ", line);
        Assert.DoesNotContain("(Parameter", line); // LandscapeInputException's message is the bare line
    }

    [Theory]
    [MemberData(nameof(Bugs))]
    public void Any_Other_Exception_Is_A_Bug_Exit_70_Saying_So(Exception e)
    {
        var stderr = new StringWriter();
        Assert.Equal(70, LandscapeApp.Report(e, stderr, debug: false));
        var line = Assert.Single(stderr.ToString().TrimEnd().Split('\n'));
        Assert.StartsWith($"landscape: internal error ({e.GetType().Name}): ", line);
        Assert.EndsWith("— this is a bug; LANDSCAPE_DEBUG=1 shows the trace", line);
    }

    [Fact]
    public void Debug_Prints_The_Trace_Before_The_Line()
    {
        Exception caught;
        try
        {
            throw new InvalidOperationException("boom");
        }
        catch (InvalidOperationException e)
        {
            caught = e;
        }
        var stderr = new StringWriter();
        Assert.Equal(LandscapeApp.InternalError, LandscapeApp.Report(caught, stderr, debug: true));
        Assert.Contains("   at ", stderr.ToString());
        Assert.EndsWith("LANDSCAPE_DEBUG=1 shows the trace", stderr.ToString().TrimEnd());
    }

    [Fact]
    public void Data_That_Does_Not_Fit_The_Model_Exits_2_Through_The_Library_Refusal()
    {
        // A 3-input model on 2-input data: ResidualMap refuses it (LandscapeInputException), which is bad input, not a bug.
        var csv = Path.Combine(_dir, "three.csv");
        File.WriteAllText(csv, "a,b,c,y\n1,2,3,4\n5,6,7,8\n");
        var model = Path.Combine(_dir, "m.json");
        var (code, output, err) = CliTests.Run("init", "--data", csv, "--target", "y", "--hidden", "3", "--out", model);
        Assert.True(code == 0, output + err);
        File.WriteAllText(Path.Combine(_dir, "two.csv"), "a,b,y\n1,2,3\n4,5,6\n");
        (code, output, err) = CliTests.Run("evaluate", "--model", model, "--data", Path.Combine(_dir, "two.csv"), "--target", "y");
        Assert.Equal(2, code);
        Assert.Equal("landscape: error: the data has 2 input columns, the model takes 3", err.Trim());
        Assert.DoesNotContain("   at ", output + err);
    }

    /// <summary>
    /// The library's refusals of bad input are <see cref="LandscapeInputException"/> (so the CLI reports them as bad
    /// input, exit 2), with a one-line message that carries the refused value.
    /// </summary>
    [Fact]
    public void Library_Refuses_Bad_Input_With_LandscapeInputException()
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get("mlp 3-5-1 relu");
        using var model = new NetworkModel(c.Network, c.Parameters);
        var map = new ResidualMap(model, c.Data);
        using var op = new DenseOperator(eye(3, dtype: float64));
        var refusals = new (Action Call, string Message)[]
        {
            (() => SyntheticData.Gaussian(0, 3), "got D = 0"),
            (() => _ = new ResidualMap(model, c.Data, exponent: 0.5), "got 0.5"),
            (() => _ = new ResidualMap(model, Cases.Data(4, 2, 1, 1)), "the data has 2 input columns, the model takes 3"),
            (() => LossSlice.Compute(map, new SliceOptions([SliceDirection.Random], Grid: 1)), "at least 2 grid points per axis"),
            (() => Trainer.Run(map, new GaussNewton(), new TrainingOptions(-1)), "got -1"),
            (() => _ = new Adam(new AdamOptions(LearningRate: -1)), "got -1"),
            (() => Lanczos.Eigenpairs(op, new LanczosOptions(K: 0)), "got 0"),
            (() => Hutchinson.Trace(op, new TraceOptions(Tolerance: -1)), "Tolerance = -1"),
            (() => _ = new Mlp(3, [new HiddenLayer(0, new SmooLU())], 1), "width must be positive"),
        };
        foreach (var (call, message) in refusals)
        {
            var e = Assert.Throws<LandscapeInputException>(call);
            Assert.Contains(message, e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
    }

    [Theory]
    [InlineData("trace", "--method", "hutchinson", "--tolerance", "-1", "Tolerance = -1")]
    [InlineData("spectrum", "--method", "lanczos", "--max-iterations", "0", "MaxIterations must be at least 1, got 0")]
    public void An_Option_Value_The_Library_Refuses_Exits_2(string command, string o1, string v1, string o2, string v2, string message)
    {
        var model = Path.Combine(_dir, "m.json");
        var (code, output, err) = CliTests.Run("init", "--data", "builtin:iris", "--hidden", "3", "--out", model);
        Assert.True(code == 0, output + err);
        (code, output, err) = CliTests.Run(command, "--model", model, "--data", "builtin:iris", o1, v1, o2, v2);
        Assert.Equal(2, code);
        Assert.StartsWith("landscape: error: ", err);
        Assert.Contains(message, err);
        Assert.Single(err.TrimEnd().Split('\n'));
    }

    [Theory]
    [InlineData("walk", "--steps", "0", "--steps must be ≥ 1")]
    [InlineData("walk", "--tolerance", "-1", "--tolerance: -1 is not a positive number")]
    [InlineData("slice", "--grid", "1", "--grid: 1 is fewer than 2 points per axis")]
    [InlineData("evaluate", "--exponent", "0.5", "--exponent: 0.5 is not a finite number ≥ 1")]
    [InlineData("report", "--grid", "0", "--grid: 0 is fewer than 2 points per axis")]
    [InlineData("report", "--k", "0", "--k: 0 is not a positive number of eigenvalues")]
    [InlineData("report", "--trace-probes", "2", "--trace-probes: 2 is too few (Hutch++ needs at least 3)")]
    [InlineData("report", "--slq-probes", "0", "--slq-probes: 0 is not a positive number of probes")]
    [InlineData("spectrum", "--k", "0", "--k: 0 is not a positive number of eigenvalues")]
    [InlineData("spectrum", "--budget-gb", "0", "--budget-gb: 0 is not a positive number of gigabytes")]
    [InlineData("spectrum", "--budget-gb", "1e-10", "--budget-gb: 1E-10 is not a positive number of gigabytes")]
    [InlineData("trace", "--method", "girard", "--method: 'girard' is not one of hutchinson, hutch++, exact")]
    [InlineData("trace", "--operator", "fisher", "--operator: 'fisher' is not one of hessian, ggn")]
    [InlineData("certify", "--method", "qr", "--method: 'qr' is not one of auto, dense, gram")]
    [InlineData("certify", "--perturb", "0", "--perturb: 0 is not a positive number")]
    [InlineData("certify", "--tolerance", "-1", "--tolerance: -1 is not a positive number")]
    public void Validation_Runs_Before_Any_File_Is_Read(string command, string option, string value, string message)
    {
        // The model file does not exist: the settings are refused first, in the one validation step.
        var args = new List<string> { command, "--model", Path.Combine(_dir, "absent.json"), "--data", "builtin:iris", option, value };
        if (command is "slice" or "report")
        {
            args.AddRange(["--out", Path.Combine(_dir, command == "slice" ? "s.svg" : "r")]);
        }
        var (code, _, err) = CliTests.Run(args.ToArray());
        Assert.Equal(2, code);
        Assert.Contains(message, err);
        Assert.DoesNotContain("absent.json", err);
        Assert.Single(err.TrimEnd().Split('\n'));
    }

    [Fact]
    public void Train_Batch_Size_Is_Checked_By_The_Shared_Validation()
    {
        var (code, _, err) = CliTests.Run("train", "--data", "builtin:iris", "--optimizer", "sgd", "--batch-size", "0", "--out", Path.Combine(_dir, "x.json"));
        Assert.Equal(2, code);
        Assert.Contains("--batch-size: 0 is not a positive number of rows", err);
    }
}

/// <summary>Outputs are written to a temporary file beside the target and renamed over it.</summary>
public sealed class AtomicOutputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-atomic-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>
    /// A reader that opened the old file keeps reading the old file: the new one is a different file renamed over
    /// the name (written in place, as File.WriteAllText does, the reader would see the new or a truncated text).
    /// </summary>
    [Fact]
    public void A_Reader_Of_The_Old_File_Never_Sees_A_Partial_Write()
    {
        var path = Path.Combine(_dir, "out.json");
        File.WriteAllText(path, "old contents\n");
        using var reader = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        AtomicFile.WriteAllText(path, "{\"new\": true}\n");
        using (var old = new StreamReader(reader))
        {
            Assert.Equal("old contents\n", old.ReadToEnd());
        }
        Assert.Equal("{\"new\": true}\n", File.ReadAllText(path));
        Assert.Equal(new[] { "out.json" }, Directory.GetFiles(_dir).Select(f => Path.GetFileName(f)).ToArray()); // no temporary file left
    }

    [Fact]
    public void Model_Files_Written_By_The_Cli_Replace_The_Old_File_Whole()
    {
        var path = Path.Combine(_dir, "m.json");
        var (code, output, err) = CliTests.Run("init", "--data", "builtin:iris", "--hidden", "3", "--out", path);
        Assert.True(code == 0, output + err);
        string before = File.ReadAllText(path);
        using var reader = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        (code, output, err) = CliTests.Run("init", "--data", "builtin:iris", "--hidden", "3", "--seed", "1", "--out", path, "--standardize");
        Assert.True(code == 0, output + err);
        using (var old = new StreamReader(reader))
        {
            Assert.Equal(before, old.ReadToEnd());
        }
        Assert.NotEqual(before, File.ReadAllText(path));
        Assert.True(ModelFile.Load(path).Network.Scaling is not null);
        Assert.Equal(new[] { "m.json" }, Directory.GetFiles(_dir).Select(f => Path.GetFileName(f)).ToArray());
    }

    [Fact]
    public void An_Unwritable_Target_Is_Bad_Input_And_Leaves_No_Temporary_File()
    {
        var blocker = Path.Combine(_dir, "blocker");
        File.WriteAllText(blocker, "a file where a directory should be\n");
        var error = Assert.Throws<LandscapeInputException>(() => AtomicFile.WriteAllText(Path.Combine(blocker, "out.json"), "{}"));
        Assert.Contains("cannot write", error.Message);
        var target = Path.Combine(_dir, "dir-target");
        Directory.CreateDirectory(target);
        Assert.Throws<LandscapeInputException>(() => AtomicFile.WriteAllText(target, "{}")); // a directory cannot be replaced by a file
        Assert.Equal(new[] { "blocker" }, Directory.GetFiles(_dir).Select(f => Path.GetFileName(f)).ToArray());
    }

    [Fact]
    public void Json_Goes_Into_A_New_Directory()
    {
        var json = Path.Combine(_dir, "nested", "deeper", "info.json");
        var model = Path.Combine(_dir, "m.json");
        var (code, output, err) = CliTests.Run("init", "--data", "builtin:iris", "--hidden", "3", "--out", model);
        Assert.True(code == 0, output + err);
        (code, output, err) = CliTests.Run("info", "--model", model, "--json", json);
        Assert.True(code == 0, output + err);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal(19, doc.RootElement.GetProperty("n").GetInt32()); // p = 4, ℓ = 1 (the last column): (3·4+3) + (1·3+1)
    }
}
