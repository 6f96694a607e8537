using LossLandscape.Cluster;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>
/// <c>certify --cluster</c> and <see cref="Certificate.Compute"/> on a <see cref="ClusterSession"/>: rank of J, its tolerance and σ, and the inertia equal the
/// single-process ones on the same route (issue 12 §3): the Gram route (K from the shards' factors) on the case table and on
/// digits, and the SVD route (J's rows gathered) where J fits the driver.
/// </summary>
[Collection(OrleansClusterCollection.Name)]
public sealed class ClusterCertifyTests(OrleansClusterFixture fixture)
{
    private ClusterSession Open(FeedforwardNetwork network, double[] parameters, Dataset data, DataSource source)
    {
        var session = new ClusterSession(fixture.Cluster.Client, OrleansClusterFixture.Config, source, data, new NetworkPoint(network, parameters));
        session.Open();
        return session;
    }

    private static void Relative(double expected, double actual, double scale, string what) =>
        Assert.True(Math.Abs(expected - actual) <= Tolerances.DistributedAgreement * Math.Max(scale, double.Epsilon), $"{what}: {expected:R} single, {actual:R} distributed");

    /// <summary>
    /// <see cref="Certificate.Compute"/> on the session against the same call on the map, with a budget that leaves the
    /// SVD of J out where <paramref name="gramRoute"/> (J never gathered: K from the shards' factors).
    /// </summary>
    private static void AssertSameCertificate(ResidualMap map, ClusterSession session, string name, bool gramRoute = true)
    {
        long budget = gramRoute ? JacobianFactorization.RequiredBytes(map, JacobianRoute.Gram) : MemoryBudget.DefaultBytes;
        var options = new CertificateOptions(InertiaMethod.Gram);
        var single = Certificate.Compute(map, options, new RunLimits(budget));
        var distributed = Certificate.Compute(session, options, new RunLimits(budget));
        var gram = single.Jacobian;
        if (gramRoute)
        {
            Assert.NotEqual("svd of J", gram.Basis);
        }
        Assert.True(gram.Decided, $"{name}: the reference rank is not decided");
        Assert.Equal(gram.Basis, distributed.Jacobian.Basis);
        Assert.Equal(single.Jacobian.Rank, distributed.Jacobian.Rank);
        Assert.Equal(single.ManifoldDimension, distributed.ManifoldDimension);
        Assert.Equal(single.RegularPoint, distributed.RegularPoint);
        Assert.Equal(single.OnManifold, distributed.OnManifold);
        Assert.Equal((single.Hessian.Positive, single.Hessian.Zero, single.Hessian.Negative), (distributed.Hessian.Positive, distributed.Hessian.Zero, distributed.Hessian.Negative));
        Assert.Equal(single.Hessian.Decided, distributed.Hessian.Decided);
        Relative(single.Loss, distributed.Loss, Math.Max(1.0, single.Loss), $"{name}: L");
        Relative(single.MaxAbsResidual, distributed.MaxAbsResidual, Math.Max(1.0, single.MaxAbsResidual), $"{name}: max|H|");
        Relative(gram.Tolerance, distributed.Jacobian.Tolerance, gram.Tolerance, $"{name}: rank tolerance");
        double sigmaMax = gram.SigmaMax;
        Assert.Equal(gram.SingularValues.Length, distributed.Jacobian.SingularValues.Length);
        // σ₁ … σ_rank (the ones the decision rests on) to 1e-12 of σmax: the eigenvalues of K move by ~ε‖K‖ when the sum over
        // samples is reordered, so σᵢ = √λᵢ by ~ε‖K‖/(2σᵢ), relative to σmax ε·σmax/(2σᵢ) (Weyl; Golub & Van Loan §8.1).
        Relative(gram.SigmaMax, distributed.Jacobian.SigmaMax, gram.SigmaMax, $"{name}: σmax");
        for (int i = 0; i < gram.Rank; i++)
        {
            Relative(gram.SingularValues[i], distributed.Jacobian.SingularValues[i], sigmaMax, $"{name}: σ{i + 1} (σmax {sigmaMax:G3})");
        }
    }

    [Fact]
    public void Distributed_Certificate_Equals_Single_Process_Gram_Certificate_On_Small_Networks()
    {
        foreach (var c in Cases.Mlps().Where(c => c.Name.StartsWith("mlp 3-5-3", StringComparison.Ordinal)).Take(2))
        {
            using var scope = NewDisposeScope();
            using var model = new NetworkModel(c.Network, c.Parameters);
            using var map = new ResidualMap(model, c.Data);
            AssertSameCertificate(map, Open(c.Network, c.Parameters, c.Data, new DataSource(c.Data.Source, [])), c.Name);
        }
    }

    [Fact]
    public void Where_J_Fits_The_Driver_The_Distributed_Certificate_Is_The_Single_Process_Svd_Certificate()
    {
        foreach (var c in Cases.Mlps().Where(c => c.Name.StartsWith("mlp 3-5-3", StringComparison.Ordinal)).Take(2))
        {
            using var scope = NewDisposeScope();
            using var model = new NetworkModel(c.Network, c.Parameters);
            using var map = new ResidualMap(model, c.Data);
            var single = Certificate.Compute(map, new CertificateOptions(InertiaMethod.Gram));
            var session = fixture.OpenSession(c);
            var distributed = Certificate.Compute(session, new CertificateOptions(InertiaMethod.Gram));
            Assert.Equal("svd of J", single.Jacobian.Basis);
            Assert.Equal(single.Jacobian.Basis, distributed.Jacobian.Basis);
            Assert.Equal(single.Jacobian.Rank, distributed.Jacobian.Rank);
            Assert.Equal(single.Jacobian.Decided, distributed.Jacobian.Decided);
            Assert.Equal((single.Hessian.Positive, single.Hessian.Zero, single.Hessian.Negative), (distributed.Hessian.Positive, distributed.Hessian.Zero, distributed.Hessian.Negative));
            Relative(single.Jacobian.Tolerance, distributed.Jacobian.Tolerance, single.Jacobian.Tolerance, $"{c.Name}: rank tolerance");
            for (int i = 0; i < single.Jacobian.SingularValues.Length; i++)
            {
                Relative(single.Jacobian.SingularValues[i], distributed.Jacobian.SingularValues[i], single.Jacobian.SigmaMax, $"{c.Name}: σ{i + 1}");
            }
        }
    }

    [Fact]
    public void Distributed_Certificate_Equals_Single_Process_Gram_Certificate_On_Digits()
    {
        using var scope = NewDisposeScope();
        // ℓ = 1 (the digit as a number): ℓd = 1 797 < n = 4 225, JJᵀ 1 797 × 1 797, a rank decided across a resolved gap.
        var data = DatasetLoader.Load("builtin:digits", TargetSpec.Regression("digit"));
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(64, ActivationRegistry.Default)], data.OutputDim);
        var parameters = mlp.InitialParameters(4);
        using var model = new NetworkModel(mlp, parameters);
        using var map = new ResidualMap(model, data);
        AssertSameCertificate(map, Open(mlp, parameters, data, new DataSource("builtin:digits", ["digit"])), "digits");
    }

    [Fact]
    public void Certify_With_Cluster_Writes_The_Single_Process_Certificate()
    {
        var dir = Directory.CreateTempSubdirectory("landscape-cluster-certify-").FullName;
        try
        {
            string file = fixture.WriteClusterFile(dir), model = Path.Combine(dir, "m.json");
            // Six rows, n = 33 > ℓd = 6: J fits the driver, so the command on the cluster gathers J's rows and decides the rank
            // by the SVD, as the single-process command does.
            string csv = Path.Combine(dir, "six.csv");
            File.WriteAllText(csv, "x1,x2,y\n0,0,0.5\n1,0,-0.3\n0,1,0.8\n1,1,0.1\n0.5,0.2,-0.6\n0.3,0.9,0.4\n");
            string[] data = ["--data", csv];
            Assert.Equal(0, CliTests.Run(["init", .. data, "--hidden", "8", "--out", model]).Code);
            string local = Path.Combine(dir, "local.json"), remote = Path.Combine(dir, "remote.json");
            var (code, _, err) = CliTests.Run(["certify", "--model", model, .. data, "--method", "gram", "--json", local]);
            Assert.True(code == 0, err);
            (code, _, err) = CliTests.Run(["certify", "--model", model, .. data, "--method", "gram", "--cluster", file, "--json", remote]);
            Assert.True(code == 0, err);
            using var a = System.Text.Json.JsonDocument.Parse(File.ReadAllText(local));
            using var b = System.Text.Json.JsonDocument.Parse(File.ReadAllText(remote));
            foreach (var field in new[] { "kernelDimension", "n", "constraints" })
            {
                Assert.Equal(a.RootElement.GetProperty(field).GetInt32(), b.RootElement.GetProperty(field).GetInt32());
            }
            // A point at its initialization is off M: n − rank J is written, dim M is not (null) on either route.
            Assert.Equal(System.Text.Json.JsonValueKind.Null, a.RootElement.GetProperty("manifoldDimension").ValueKind);
            Assert.Equal(System.Text.Json.JsonValueKind.Null, b.RootElement.GetProperty("manifoldDimension").ValueKind);
            Assert.Equal(6, a.RootElement.GetProperty("jacobian").GetProperty("rank").GetInt32());
            Assert.Equal(a.RootElement.GetProperty("jacobian").GetProperty("rank").GetInt32(), b.RootElement.GetProperty("jacobian").GetProperty("rank").GetInt32());
            foreach (var count in new[] { "positive", "zero", "negative" })
            {
                Assert.Equal(a.RootElement.GetProperty("hessian").GetProperty(count).GetInt32(), b.RootElement.GetProperty("hessian").GetProperty(count).GetInt32());
            }
            double x = a.RootElement.GetProperty("jacobian").GetProperty("sigmaMax").GetDouble(), y = b.RootElement.GetProperty("jacobian").GetProperty("sigmaMax").GetDouble();
            Assert.True(Math.Abs(x - y) <= Tolerances.DistributedAgreement * x, $"σmax: {x:R} here, {y:R} on the cluster");
            Assert.Equal(3, b.RootElement.GetProperty("cluster").GetProperty("shards").GetInt32());
            // The dense method on the cluster: n Hessian columns by distributed products, the same counts as here.
            string denseLocal = Path.Combine(dir, "dense-local.json"), denseRemote = Path.Combine(dir, "dense-remote.json");
            Assert.Equal(0, CliTests.Run(["certify", "--model", model, .. data, "--method", "dense", "--json", denseLocal]).Code);
            (code, _, err) = CliTests.Run(["certify", "--model", model, .. data, "--method", "dense", "--cluster", file, "--json", denseRemote]);
            Assert.True(code == 0, err);
            using var c = System.Text.Json.JsonDocument.Parse(File.ReadAllText(denseLocal));
            using var d = System.Text.Json.JsonDocument.Parse(File.ReadAllText(denseRemote));
            Assert.Equal("dense", d.RootElement.GetProperty("hessian").GetProperty("method").GetString());
            foreach (var count in new[] { "positive", "zero", "negative" })
            {
                Assert.Equal(c.RootElement.GetProperty("hessian").GetProperty(count).GetInt32(), d.RootElement.GetProperty("hessian").GetProperty(count).GetInt32());
            }
            // --perturb certifies perturbed targets that only this process has: refused with one line naming why.
            var refused = CliTests.Run(["certify", "--model", model, .. data, "--perturb", "1e-3", "--cluster", file]);
            CliGuardTests.AssertOneLineError(refused, "--perturb");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
