using System.Collections.Concurrent;
using LossLandscape.Construction;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using LossLandscape.Reports;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>The exact rank certificate of <see cref="TriangularActivationCertificate"/> at points built by Lemma 3.3.</summary>
public class TriangularCertificateTests
{
    /// <summary>The first rows of diabetes used (d = 100 keeps each case well under a second).</summary>
    private const int DiabetesRows = 100;

    private static Dataset Data(string name, bool oneHot) => name == "diabetes"
        ? DatasetLoader.Load("builtin:diabetes", TargetSpec.LastColumn).Take(DiabetesRows)
        : PaperVerification.Iris(oneHot);

    public static TheoryData<string, string, bool, int> ConstructedCases() => new()
    {
        // dataset, activation, one-hot, copies of d units in the hidden layer (Remark 4.2 when > 1)
        { "iris", "smoolu", false, 1 }, { "iris", "relu", false, 1 },
        { "diabetes", "smoolu", false, 1 }, { "diabetes", "relu", false, 1 },
        { "iris", "smoolu", true, 1 }, { "iris", "smoolu", true, 3 },
    };

    /// <summary>Constructed points by case, shared by the two theories over the same cases (construction dominates their time).</summary>
    private static readonly ConcurrentDictionary<(int Rows, int Outputs, string Activation, int Copies), NetworkPoint> Points = new();

    private static (NetworkModel Model, ResidualMap Map) Constructed(Dataset data, string activation, int copies)
    {
        var point = Points.GetOrAdd((data.Count, data.OutputDim, activation, copies), _ =>
            Lemma33Interpolation.Construct(data, new ConstructionOptions(ActivationRegistry.Get(activation), [copies * data.Count], InputScaling.Standardize(data))).Point);
        var model = point.ToModel();
        return (model, new ResidualMap(model, data));
    }

    [Theory]
    [MemberData(nameof(ConstructedCases))]
    public void Constructed_Point_Has_A_Triangular_Activation_Block_Of_Rank_ld(string dataset, string activation, bool oneHot, int copies)
    {
        var data = Data(dataset, oneHot);
        var (model, map) = Constructed(data, activation, copies);
        using var m = model;
        using var r = map;
        var check = TriangularActivationCertificate.Check(map);
        Assert.True(check.Holds, check.Failure);
        Assert.Equal(data.Count * data.OutputDim, check.ProvenRank);
        Assert.Equal(TriangularActivationCertificate.Basis, check.Basis);
        Assert.Equal(Enumerable.Range(0, data.Count), check.RowOrder.Order());
        Assert.Equal(data.Count, check.Units.Distinct().Count());
        // Dense reference: the activations as the network computes them, in the order found, are exactly lower triangular.
        using var scope = NewDisposeScope();
        var mlp = (Mlp)model.Network;
        var a = mlp.LayerInput(model.Parameters, data.InputsTensor(), mlp.Layers.Count - 1);
        var sub = a.index_select(0, tensor(check.RowOrder.Select(i => (long)i).ToArray())).index_select(1, tensor(check.Units.Select(u => (long)u).ToArray()));
        Assert.Equal(0.0, sub.triu(1).abs().max().item<double>());
        Assert.True(sub.diagonal().abs().min().item<double>() > 0);
        Assert.Equal(check.MinDiagonalActivation, sub.diagonal().abs().min().item<double>());
    }

    [Theory]
    [MemberData(nameof(ConstructedCases))]
    public void Certificate_Decides_Rank_ld_And_The_Inertia_At_A_Constructed_Point(string dataset, string activation, bool oneHot, int copies)
    {
        var data = Data(dataset, oneHot);
        var (model, map) = Constructed(data, activation, copies);
        using var m = model;
        using var r = map;
        var c = Certificate.Compute(map, new CertificateOptions(InertiaMethod.Gram));
        int ld = data.Count * data.OutputDim;
        Assert.True(c.OnManifold);
        Assert.Equal(ld, c.Jacobian.Rank);
        Assert.True(c.Jacobian.Decided);
        Assert.True(c.Hessian.Decided, c.Hessian.Note);
        Assert.Equal((ld, c.N - ld, 0), (c.Hessian.Positive, c.Hessian.Zero, c.Hessian.Negative));
        // The structural basis is used exactly when the numerical decision fell short, and then it holds.
        Assert.Equal(c.Triangular is not null, c.Jacobian.Exact);
        if (c.Jacobian.Exact)
        {
            Assert.Equal(TriangularActivationCertificate.Basis, c.Jacobian.Basis);
            Assert.Contains(TriangularActivationCertificate.Basis, c.Hessian.Note);
        }
    }

    [Fact]
    public void Certificate_Uses_The_Exact_Basis_Where_The_Numerical_Rank_Is_Not_Decided()
    {
        // Diabetes (d = 442, h = d, smooLU) by the Gram route, the route full-size digits takes (its SVD route is over
        // the memory cap): σmin(J)/σmax(J) at the construction is below what √eig(JJᵀ) resolves
        // (on the first 200 rows it still resolves, and the numerical basis stands: see the theory above).
        // Without the polish (its full Gauss–Newton steps take about a minute here): the triangular system alone already
        // puts the point on M (max|H| ≈ 8e−9 ≤ 1e−8·max|y|), and the polish is covered by the cases above.
        var data = DatasetLoader.Load("builtin:diabetes", TargetSpec.LastColumn);
        var built = Lemma33Interpolation.Construct(data, new ConstructionOptions(new SmooLU(), [data.Count], InputScaling.Standardize(data), Polish: false));
        var model = built.Point.ToModel();
        var map = new ResidualMap(model, data);
        using var m = model;
        using var r = map;
        long gramOnly = JacobianFactorization.RequiredBytes(map, JacobianRoute.Gram);
        Assert.True(gramOnly < JacobianFactorization.RequiredBytes(map, JacobianRoute.Svd));
        var c = Certificate.Compute(map, new CertificateOptions(InertiaMethod.Gram), new RunLimits(gramOnly));
        Assert.True(c.OnManifold);
        Assert.True(c.Jacobian.Exact, $"numerical: {c.Jacobian.Basis}, rank {c.Jacobian.Rank}, σmax {c.Jacobian.SigmaMax:e2}, σmin {c.Jacobian.SigmaMin:e2}, tol {c.Jacobian.Tolerance:e2}; {c.Triangular?.Failure}");
        Assert.NotNull(c.Triangular);
        Assert.Equal(TriangularActivationCertificate.Basis, c.Jacobian.Basis);
        Assert.Equal(data.Count, c.Jacobian.Rank);
        Assert.True(c.Hessian.Decided, c.Hessian.Note);
        Assert.Equal(data.Count, c.Hessian.Positive);
    }

    [Fact]
    public void Over_The_Memory_Budget_The_Pattern_Alone_Decides_A_Constructed_Point_And_Refuses_Otherwise()
    {
        var data = Data("iris", oneHot: true);
        var (model, map) = Constructed(data, "smoolu", 3);
        using var m = model;
        using var r = map;
        // A budget that holds the structural check but not σ(J) by either route.
        long budget = TriangularActivationCertificate.RequiredBytes(map);
        Assert.True(budget < JacobianFactorization.RequiredBytes(map, JacobianRoute.Gram));
        var c = Certificate.Compute(map, new CertificateOptions(InertiaMethod.Gram), new RunLimits(budget));
        int ld = data.Count * data.OutputDim;
        Assert.True(c.Jacobian.Exact);
        Assert.Empty(c.Jacobian.SingularValues);
        Assert.Equal((ld, true), (c.Jacobian.Rank, c.Jacobian.Decided));
        Assert.Equal((ld, c.N - ld, 0, true), (c.Hessian.Positive, c.Hessian.Zero, c.Hessian.Negative, c.Hessian.Decided));
        Assert.Contains("not computed", c.Hessian.Note);

        // A random rectified point (off M, no pattern) under the same kind of budget: the budget refusal stands.
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(3 * data.Count, new SmooLU())], data.OutputDim);
        using var random = new NetworkModel(mlp, mlp.InitialParameters(seed: 4));
        using var randomMap = new ResidualMap(random, data);
        Assert.Throws<MemoryBudgetExceededException>(() =>
            Certificate.Compute(randomMap, new CertificateOptions(InertiaMethod.Gram), new RunLimits(TriangularActivationCertificate.RequiredBytes(randomMap))));
    }

    [Fact]
    public void Tanh_Network_Is_Not_Applicable_And_The_Basis_Stays_Numerical()
    {
        var data = PaperVerification.Iris(oneHot: false);
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(data.Count, new Tanh())], 1);
        using var model = new NetworkModel(mlp, mlp.InitialParameters(seed: 1));
        using var map = new ResidualMap(model, data);
        var check = TriangularActivationCertificate.Check(map);
        Assert.False(check.Holds);
        Assert.StartsWith("not applicable", check.Basis);
        Assert.Equal(0, check.ProvenRank);
        var c = Certificate.Compute(map, new CertificateOptions(InertiaMethod.Gram));
        Assert.False(c.Jacobian.Exact);
        Assert.NotEqual(TriangularActivationCertificate.Basis, c.Jacobian.Basis);
    }

    [Theory]
    [InlineData("smoolu")]
    [InlineData("relu")]
    public void Random_Rectified_Point_Does_Not_Have_The_Pattern(string activation)
    {
        // He initialisation with b = 0: every unit is on for about half the data, far from any triangular pattern.
        var data = PaperVerification.Iris(oneHot: false);
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(data.Count, ActivationRegistry.Get(activation))], 1);
        using var model = new NetworkModel(mlp, mlp.InitialParameters(seed: 2));
        using var map = new ResidualMap(model, data);
        var check = TriangularActivationCertificate.Check(map);
        Assert.False(check.Holds);
        Assert.Equal("pattern does not hold", check.Basis);
        Assert.Contains("no unit is switched on in exactly one", check.Failure);
        var c = Certificate.Compute(map, new CertificateOptions(InertiaMethod.Gram));
        Assert.False(c.Jacobian.Exact);
    }

    [Fact]
    public void Pattern_Broken_In_One_Entry_Is_Reported_At_That_Entry()
    {
        // A 6 × 6 lower-triangular pattern (row i on in units 0…i), then row 1 switched on in unit 4 above the diagonal.
        const int d = 6;
        var on = new bool[d * d];
        var values = new double[d * d];
        for (int i = 0; i < d; i++)
        {
            for (int u = 0; u <= i; u++)
            {
                on[(i * d) + u] = true;
                values[(i * d) + u] = 1 + i - u;
            }
        }
        var intact = TriangularActivationCertificate.Arrange(on, on, values, d, d, outputs: 2);
        Assert.True(intact.Holds);
        Assert.Equal(2 * d, intact.ProvenRank);
        Assert.Equal(Enumerable.Range(0, d), intact.RowOrder);
        Assert.Equal(Enumerable.Range(0, d), intact.Units);
        Assert.Equal(1.0, intact.MinDiagonalActivation);

        var broken = (bool[])on.Clone();
        broken[(1 * d) + 4] = true;
        var result = TriangularActivationCertificate.Arrange(broken, broken, values, d, d, outputs: 2);
        Assert.False(result.Holds);
        Assert.Contains("row 1 (position 1) is switched on in unit 4 (position 4) above the diagonal", result.Failure);

        // An entry whose sign is uncertain (possibly nonzero, not certainly on) cannot serve as a diagonal.
        var uncertain = (bool[])on.Clone();
        uncertain[(5 * d) + 5] = false;
        var diagonal = TriangularActivationCertificate.Arrange(on, uncertain, values, d, d, outputs: 1);
        Assert.False(diagonal.Holds);
        Assert.Contains("row 5 (position 5) is not certainly switched on in its diagonal unit 5", diagonal.Failure);
    }
}
