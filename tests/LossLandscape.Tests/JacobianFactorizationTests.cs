using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>
/// <see cref="JacobianFactorization"/>, the library's one route to σ(J), the rank, J⁺r and the tangent projection: both
/// routes forced on the shared table of cases against a dense reference built here with torch's SVD and pseudo-inverse;
/// and <see cref="MemoryBudget"/>.
/// </summary>
public sealed class JacobianFactorizationTests(ITestOutputHelper output)
{
    public static TheoryData<string> CaseNames() => Cases.Names();

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Svd_And_Gram_Routes_Agree_With_The_Dense_Reference(string name)
    {
        var c = Cases.Get(name);
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        using var map = new ResidualMap(model, c.Data);
        var j = map.Jacobian(JacobianMethod.Autograd);
        long m = j.shape[0], n = j.shape[1];
        var reference = linalg.svdvals(j).data<double>().ToArray();
        double sigmaMax = reference[0];
        manual_seed(11);
        var r = randn(m, dtype: float64);
        var identity = eye(n, dtype: float64);

        using var svd = JacobianFactorization.At(map, JacobianRoute.Svd);
        using var gram = JacobianFactorization.At(map, JacobianRoute.Gram);
        Assert.Equal(JacobianRoute.Svd, svd.Route);
        Assert.Equal(JacobianRoute.Gram, gram.Route);
        output.WriteLine($"{name}: ℓd = {m}, n = {n}, σ = {string.Join(", ", reference.Select(s => s.ToString("G3")))}; rank svd {svd.Rank.Rank} (tol {svd.Tolerance:G3}), gram {gram.Rank.Rank} (tol {gram.Tolerance:G3})");

        foreach (var f in new[] { svd, gram })
        {
            var rank = f.Rank;
            // σ: each route within a multiple of its own stated resolution of LAPACK's singular values; the Gram route's
            // extra ℓd − n values (tall J) are zeros to the same resolution.
            double allowed = Tolerances.ResolutionMultiple * rank.Resolution;
            for (int i = 0; i < reference.Length; i++)
            {
                Assert.True(Math.Abs(rank.SingularValues[i] - reference[i]) <= allowed, $"{name} {f.Route}: σ{i} {rank.SingularValues[i]:R} vs {reference[i]:R} (allowed {allowed:G3})");
            }
            Assert.All(rank.SingularValues.Skip(reference.Length), s => Assert.True(s <= allowed, $"{name} {f.Route}: extra σ {s:G3}"));

            // The rank is #{σᵢ > tolerance}. Where every reference σᵢ lies farther from the cut than the route's own error,
            // the reference decides the same rank, and J⁺r and Π (whose kept directions depend on the cut) are compared.
            double error = reference.Select((s, i) => Math.Abs(rank.SingularValues[i] - s)).Max();
            Assert.Equal(rank.SingularValues.Count(s => s > rank.Tolerance), rank.Rank);
            if (reference.Any(s => Math.Abs(s - rank.Tolerance) <= error) || rank.Rank == 0)
            {
                continue;
            }
            Assert.Equal(reference.Count(s => s > rank.Tolerance), rank.Rank);

            // J⁺r and Π = I − J⁺J against torch's pseudo-inverse with the same cut; error ∝ ε·κ (SVD) or ε·κ² (Gram).
            double kappa = sigmaMax / rank.SigmaAbove;
            double bound = Tolerances.SolveErrorMultiple * Float64.Epsilon * (f.Route == JacobianRoute.Svd ? kappa : kappa * kappa);
            var pinv = linalg.pinv(j, atol: rank.Tolerance);
            var expected = pinv.matmul(r);
            double solveError = (f.PseudoInverseTimes(r) - expected).norm().item<double>() / expected.norm().item<double>();
            var projector = identity - pinv.matmul(j);
            double projectorError = (f.TangentProjection(identity) - projector).abs().max().item<double>();
            output.WriteLine($"  {f.Route}: κ = {kappa:G3}, ‖J⁺r − ref‖/‖ref‖ = {solveError:G3}, max|Π − ref| = {projectorError:G3}, bound {bound:G3}");
            Assert.True(solveError <= bound, $"{name} {f.Route}: J⁺r relative error {solveError:G3} > {bound:G3}");
            Assert.True(projectorError <= bound, $"{name} {f.Route}: projector error {projectorError:G3} > {bound:G3}");
        }

        // The two routes agree on the rank whenever both decide it across a resolved gap, and whenever no singular value
        // lies between the SVD's cut and the Gram route's (beyond the Gram route's error): there the routes see the same σ.
        if (svd.Rank.Decided && gram.Rank.Decided)
        {
            Assert.Equal(svd.Rank.Rank, gram.Rank.Rank);
        }
        double gramError = Tolerances.ResolutionMultiple * gram.Rank.Resolution;
        if (reference.All(s => s <= svd.Tolerance || s > gram.Tolerance + gramError))
        {
            Assert.Equal(svd.Rank.Rank, gram.Rank.Rank);
        }
    }

    [Fact]
    public void Routes_Agree_On_Rank_And_Tangent_Space_Where_J_Is_Rank_Deficient()
    {
        // PaperVerification's rank-deficient point of M (output weights 0): rank J ≤ 7 < ℓd = 12. The SVD decides the
        // rank across a resolved gap; the Gram route's noise (√(ℓd·ε)·σmax) sits near its own tolerance, so it need not
        // call the gap decided, but it must count the same rank and project onto the same ker J.
        var (data, point) = Reports.PaperVerification.RankDeficientPoint();
        using var scope = NewDisposeScope();
        using var model = point.ToModel();
        using var map = new ResidualMap(model, data);
        using var svd = JacobianFactorization.At(map, JacobianRoute.Svd);
        using var gram = JacobianFactorization.At(map, JacobianRoute.Gram);
        output.WriteLine($"svd: rank {svd.Rank.Rank}, tol {svd.Tolerance:G3}, σ {string.Join(", ", svd.Sigma.Select(v => v.ToString("G3")))}");
        output.WriteLine($"gram: rank {gram.Rank.Rank}, tol {gram.Tolerance:G3}, σ {string.Join(", ", gram.Sigma.Select(v => v.ToString("G3")))}");
        Assert.True(svd.Rank.Decided);
        Assert.True(svd.Rank.Rank < map.Constraints);
        Assert.Equal(svd.Rank.Rank, gram.Rank.Rank);
        var j = map.Jacobian();
        var identity = eye(map.ParameterCount, dtype: float64);
        var projector = identity - linalg.pinv(j, atol: svd.Tolerance).matmul(j);
        double kappa = svd.SigmaMax / svd.Rank.SigmaAbove;
        Assert.True((svd.TangentProjection(identity) - projector).abs().max().item<double>() <= Tolerances.SolveErrorMultiple * Float64.Epsilon * kappa);
        Assert.True((gram.TangentProjection(identity) - projector).abs().max().item<double>() <= Tolerances.SolveErrorMultiple * Float64.Epsilon * kappa * kappa);
    }

    [Fact]
    public void Auto_Route_Is_The_Svd_When_It_Fits_And_The_Gram_Matrix_Otherwise()
    {
        var c = Cases.Mlps().First();
        using var model = new NetworkModel(c.Network, c.Parameters);
        using var map = new ResidualMap(model, c.Data);
        long svdBytes = JacobianFactorization.RequiredBytes(map, JacobianRoute.Svd);
        Assert.Equal(JacobianRoute.Svd, JacobianFactorization.ChooseRoute(map, new RunLimits(svdBytes)));
        Assert.Equal(JacobianRoute.Gram, JacobianFactorization.ChooseRoute(map, new RunLimits(svdBytes - 1)));
        using (var f = JacobianFactorization.At(map, limits: new RunLimits(svdBytes - 1)))
        {
            Assert.Equal(JacobianRoute.Gram, f.Route);
            Assert.Equal("eig of JJᵀ", f.Rank.Basis);
        }
        using (var f = JacobianFactorization.At(map))
        {
            Assert.Equal(JacobianRoute.Svd, f.Route);
            Assert.Equal("svd of J", f.Rank.Basis);
        }
    }

    [Fact]
    public void Memory_Budget_Refusal_Names_The_Need_The_Budget_And_The_Alternative()
    {
        Assert.Equal(96, MemoryBudget.DenseMatrixBytes(3, 4));
        Assert.Equal(long.MaxValue, MemoryBudget.DenseMatrixBytes(long.MaxValue / 4, 3));
        MemoryBudget.Require("a fitting thing", 100, 100, "nothing");
        var e = Assert.Throws<MemoryBudgetExceededException>(() => MemoryBudget.Require("the dense thing", 3_000_000_000, MemoryBudget.DefaultBytes, "use the sparse thing"));
        Assert.Equal(3_000_000_000, e.RequiredBytes);
        Assert.Equal(MemoryBudget.DefaultBytes, e.BudgetBytes);
        Assert.Equal("use the sparse thing", e.Alternative);
        Assert.Equal("the dense thing needs 3 GB, over the memory budget of 2.147 GB; use the sparse thing", e.Message);
        Assert.DoesNotContain('\n', e.Message);

        // The library's own refusals: a forced SVD route and a dense certificate over a tiny budget.
        var c = Cases.Mlps().First();
        using var model = new NetworkModel(c.Network, c.Parameters);
        using var map = new ResidualMap(model, c.Data);
        var svd = Assert.Throws<MemoryBudgetExceededException>(() => JacobianFactorization.At(map, JacobianRoute.Svd, new RunLimits(1000)));
        Assert.Contains("Gram route", svd.Alternative);
        Assert.Equal(JacobianFactorization.RequiredBytes(map, JacobianRoute.Svd), svd.RequiredBytes);
        var dense = Assert.Throws<MemoryBudgetExceededException>(() => Certificate.Compute(map, new CertificateOptions(InertiaMethod.Dense), new RunLimits(1000)));
        Assert.Contains("use the gram method", dense.Message);
        Assert.Equal(BudgetRemedy.Method, dense.Remedies);
        Assert.Equal(Certificate.DenseBytes(map.ParameterCount, map.Constraints), dense.RequiredBytes);
    }

    [Fact]
    public void Dense_Certificate_Counts_Five_n_By_n_Matrices_And_Auto_Follows_The_Rule()
    {
        var c = Cases.Mlps().First();
        using var model = new NetworkModel(c.Network, c.Parameters);
        using var map = new ResidualMap(model, c.Data);
        int n = map.ParameterCount, m = map.Constraints;
        long bytes = Certificate.DenseBytes(n, m);
        Assert.True(bytes >= Certificate.DenseMatrices * MemoryBudget.DenseMatrixBytes(n, n) + MemoryBudget.DenseMatrixBytes(m, n));
        Assert.Equal("dense", Certificate.Compute(map, limits: new RunLimits(bytes)).Hessian.Method);
        Assert.Equal("gram", Certificate.Compute(map, limits: new RunLimits(bytes - 1)).Hessian.Method);
        // The limit is the largest n whose dense certificate fits: monotone in the budget, and n + 1 does not fit.
        int limit = Certificate.DenseLimit();
        Assert.True(Certificate.DenseBytes(limit, limit) <= MemoryBudget.DefaultBytes);
        Assert.True(Certificate.DenseBytes(limit + 1, limit + 1) > MemoryBudget.DefaultBytes);
        Assert.True(Certificate.DenseLimit(constraints: 10) > limit);
    }

    [Fact]
    public void Residual_Map_Releases_Its_Tensors()
    {
        var c = Cases.Mlps().First();
        using var model = new NetworkModel(c.Network, c.Parameters);
        var map = new ResidualMap(model, c.Data);
        Assert.True(map.Loss() >= 0);
        map.Dispose();
        map.Dispose();
        Assert.Throws<ObjectDisposedException>(() => map.Residuals());
        Assert.Throws<ObjectDisposedException>(() => map.Jacobian());
    }
}
