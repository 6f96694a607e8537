using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>
/// Issue 21 §3: the losses. On the case table, for the mean squared error and cross-entropy, L, ∇L, ∇²L·V and G·V of the
/// problem (in batches of every size) equal a dense float64 reference built from the definitions: L by TorchSharp's own
/// <c>mse_loss</c> and <c>cross_entropy</c> (PyTorch's kernels, mean reduction) on all outputs at once, ∇L and ∇²L·V by
/// autograd of that value, G from the explicit J and the output-space Hessian. The commands about M refuse them in one line.
/// </summary>
public sealed class LossFunctionTests
{
    /// <summary>The case's data with one-hot targets (the class of each row: the argmax of its targets, or the sign for ℓ = 1, as two classes).</summary>
    private static Dataset OneHot(NetworkCase c)
    {
        var (_, y) = c.Data.Read(0, c.Data.Count);
        int l = c.Data.OutputDim;
        if (l == 1)
        {
            return c.Data; // ℓ = 1: one class, cross-entropy of one output is 0 everywhere; kept as the degenerate check below
        }
        var classes = y.argmax(1);
        var targets = nn.functional.one_hot(classes, l).to_type(ScalarType.Float64);
        var rows = new double[c.Data.Count, l];
        var values = targets.data<double>().ToArray();
        for (int i = 0; i < c.Data.Count; i++)
        {
            for (int j = 0; j < l; j++)
            {
                rows[i, j] = values[(i * l) + j];
            }
        }
        return c.Data.WithTargets(rows);
    }

    /// <summary>The reference L of all rows at once, in the autograd graph of the model's leaves.</summary>
    private static Tensor Reference(LossKind kind, IDifferentiableModel model, Dataset data)
    {
        var (x, y) = data.Read(0, data.Count);
        var f = model.Forward(x);
        return kind == LossKind.Mse
            ? nn.functional.mse_loss(f, y)
            : nn.functional.cross_entropy(f, y.argmax(1));
    }

    [Theory]
    [InlineData(LossKind.Mse)]
    [InlineData(LossKind.CrossEntropy)]
    public void Every_Quantity_Of_A_Mean_Loss_Equals_The_Dense_Reference_For_Every_Batch_Size(LossKind kind)
    {
        TorchRuntime.EnsureInitialized();
        int checkedCases = 0;
        foreach (var c in Cases.All().Where(c => kind == LossKind.Mse || c.Data.OutputDim > 1))
        {
            using var scope = NewDisposeScope();
            using var model = new NetworkModel(c.Network, c.Parameters);
            var data = kind == LossKind.CrossEntropy ? OneHot(c) : c.Data;
            int d = data.Count, l = data.OutputDim, n = model.ParameterCount;
            var leaves = model.Leaves.ToArray();
            var v = randn(n, 2, dtype: ScalarType.Float64, generator: new Generator(5));

            // The reference: L, ∇L and ∇²L·V by autograd of PyTorch's own loss; G = Jᵀ (∂²ℓ/∂f²) J from J and the definition.
            var value = Reference(kind, model, data);
            var gradient = ParameterVector.Flatten(autograd.grad([value], leaves, retain_graph: true, create_graph: true).ToArray(), leaves);
            var hv = cat(Enumerable.Range(0, 2).Select(j =>
                ParameterVector.Flatten(autograd.grad([gradient.dot(v.select(1, j))], leaves, retain_graph: true).ToArray(), leaves).unsqueeze(1)).ToArray(), 1);
            using var all = new ResidualMap(model, data, new LossFunction(kind), batchSize: d);
            var jacobian = all.Jacobian();
            Tensor middle;
            if (kind == LossKind.Mse)
            {
                middle = eye(d * l, dtype: ScalarType.Float64).mul(2.0 / (d * l));
            }
            else
            {
                using var noGrad = no_grad();
                var pi = nn.functional.softmax(model.Forward(data.Read(0, d).Inputs), 1);
                middle = zeros(d * l, d * l, dtype: ScalarType.Float64);
                for (int i = 0; i < d; i++)
                {
                    var p = pi[i];
                    middle.narrow(0, i * l, l).narrow(1, i * l, l).copy_((diag(p) - p.outer(p)).div(d));
                }
            }
            var gv = jacobian.t().matmul(middle).matmul(jacobian).matmul(v);

            foreach (int batch in new[] { 1, 2, d })
            {
                using var map = new ResidualMap(model, data, new LossFunction(kind), batchSize: batch);
                var (loss, grad) = map.LossAndGradient();
                BatchSizeTests.Close(value.detach().reshape(1), tensor(loss).reshape(1), $"{c.Name}, B = {batch}: L");
                BatchSizeTests.Close(gradient.detach(), grad, $"{c.Name}, B = {batch}: ∇L");
                BatchSizeTests.Close(hv, map.HessianTimes(v), $"{c.Name}, B = {batch}: ∇²L V");
                BatchSizeTests.Close(gv, map.GaussNewtonTimes(v), $"{c.Name}, B = {batch}: G V");
                Assert.Equal(map.Loss(), loss, 14);
            }
            checkedCases++;
        }
        Assert.True(checkedCases >= 10, $"only {checkedCases} cases");
    }

    [Fact]
    public void The_Squared_Loss_Is_The_Default_And_Its_Exponent_Stays_The_Papers()
    {
        var c = Cases.Get("mlp 3-5-3 smoolu");
        using var model = new NetworkModel(c.Network, c.Parameters);
        using var byExponent = new ResidualMap(model, c.Data, 3.0);
        using var byLoss = new ResidualMap(model, c.Data, LossFunction.Squared(3.0));
        Assert.Equal(byExponent.Loss(), byLoss.Loss());
        Assert.Equal(3.0, byLoss.Exponent);
        using var mse = new ResidualMap(model, c.Data, LossFunction.Mse);
        Assert.True(double.IsNaN(mse.Exponent), "a mean loss has no exponent of Σ|H_k|^a: no rule of the paper's loss applies to it");
        // The mean squared error is the squared loss divided by dℓ.
        using var squared = new ResidualMap(model, c.Data);
        Assert.Equal(squared.Loss() / (c.Data.Count * c.Data.OutputDim), mse.Loss(), 14);
        Assert.Throws<LandscapeInputException>(() => LossFunction.Parse("mse", 3.0));
        Assert.Throws<LandscapeInputException>(() => LossFunction.Parse("hinge"));
    }

    [Theory]
    [InlineData("certify")]
    [InlineData("walk")]
    [InlineData("spectrum-gram")]
    [InlineData("slice-tangent")]
    [InlineData("connect-manifold")]
    [InlineData("construct")]
    [InlineData("train-gauss-newton")]
    public void What_Is_About_M_Refuses_Cross_Entropy_In_One_Line_Saying_Why(string command)
    {
        var dir = Directory.CreateTempSubdirectory("landscape-loss-").FullName;
        try
        {
            string model = Path.Combine(dir, "m.json");
            string[] data = ["--data", "builtin:iris", "--one-hot", "species"];
            var init = CliTests.Run(["init", .. data, "--hidden", "4", "--out", model]);
            Assert.True(init.Code == 0, init.Err);
            string[] args = command switch
            {
                "certify" => ["certify", "--model", model],
                "walk" => ["walk", "--model", model, "--steps", "2"],
                "spectrum-gram" => ["spectrum", "--model", model, "--method", "gram"],
                "slice-tangent" => ["slice", "--model", model, "--directions", "tangent", "--out", Path.Combine(dir, "s.svg")],
                "connect-manifold" => ["connect", "--model", model, "--to", model, "--method", "manifold"],
                "construct" => ["construct", "--out", Path.Combine(dir, "c.json")],
                _ => ["train", "--hidden", "4", "--optimizer", "gauss-newton", "--steps", "2", "--out", Path.Combine(dir, "t.json")],
            };
            var (code, _, err) = CliTests.Run([.. args, .. data, "--loss", "cross-entropy"]);
            Assert.Equal(2, code);
            Assert.Single(err.Trim().Split('\n'));
            Assert.Contains("cross-entropy", err, StringComparison.Ordinal);
            Assert.Contains("use the squared loss", err, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Evaluate_With_A_Mean_Loss_Prints_PyTorchs_Value_And_Refuses_An_Exponent()
    {
        var dir = Directory.CreateTempSubdirectory("landscape-loss-eval-").FullName;
        try
        {
            string model = Path.Combine(dir, "m.json"), json = Path.Combine(dir, "e.json");
            string[] data = ["--data", "builtin:iris", "--one-hot", "species"];
            Assert.Equal(0, CliTests.Run(["init", .. data, "--hidden", "4", "--seed", "3", "--out", model]).Code);
            foreach (var (loss, kind) in new[] { ("mse", LossKind.Mse), ("cross-entropy", LossKind.CrossEntropy) })
            {
                var (code, _, err) = CliTests.Run(["evaluate", "--model", model, .. data, "--loss", loss, "--batch-size", "7", "--json", json]);
                Assert.True(code == 0, err);
                using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json));
                var point = ModelFile.Load(model);
                using var net = point.ToModel();
                var set = DatasetLoader.Load("builtin:iris", TargetSpec.Classes("species"));
                double expected = Reference(kind, net, set).item<double>();
                Assert.Equal(expected, doc.RootElement.GetProperty("loss").GetDouble(), 12);
            }
            var refused = CliTests.Run(["evaluate", "--model", model, .. data, "--loss", "mse", "--exponent", "3"]);
            Assert.Equal(2, refused.Code);
            Assert.Contains("has no exponent", refused.Err, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
