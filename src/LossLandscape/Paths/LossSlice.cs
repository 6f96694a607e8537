using LossLandscape.Operators;
using LossLandscape.Problem;
using LossLandscape.Curvature;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Paths;

/// <summary>How a slice direction is drawn.</summary>
public enum SliceDirection
{
    /// <summary>A Gaussian direction, scaled to unit norm.</summary>
    Random,

    /// <summary>A Gaussian direction normalized filter by filter (Li et al. 2018, Section 4), see <see cref="LossSlice.FilterNormalize"/>.</summary>
    Filter,

    /// <summary>A unit direction in ker J, tangent to M at a point of M (L = O(t⁴) along it, since H = O(t²)).</summary>
    Tangent,

    /// <summary>A unit direction in the row space of J, normal to M (L grows like t² σ² along it).</summary>
    Normal,

    /// <summary>A top eigenvector of ∇²L (Lanczos on the Hessian operator), unit norm.</summary>
    Eigen,
}

/// <summary>Settings of <see cref="LossSlice.Compute"/>.</summary>
/// <param name="Directions">One kind for a 1D slice, two for a 2D slice (a kind may repeat; repeats are orthogonalized).</param>
/// <param name="Grid">Points per axis (odd puts the model's point on the grid).</param>
/// <param name="Range">Each coordinate runs over [−Range, Range] times the direction's norm.</param>
/// <param name="Seed">Seed of the random draws.</param>
/// <param name="IgnoreBias">Filter directions: zero on biases (Li et al.'s <c>ignore='biasbn'</c>) instead of normalizing them with their unit.</param>
public sealed record SliceOptions(IReadOnlyList<SliceDirection> Directions, int Grid = 51, double Range = 1.0, int Seed = 0, bool IgnoreBias = false);

/// <summary>The loss on a 1D or 2D grid around the point: L(p + αd₁ [+ βd₂]).</summary>
/// <param name="Directions">The kinds used.</param>
/// <param name="Alphas">Grid coordinates along d₁.</param>
/// <param name="Betas">Grid coordinates along d₂ (empty for 1D).</param>
/// <param name="Loss">Loss[i, j] at (Alphas[i], Betas[j]); one column for 1D.</param>
/// <param name="DirectionNorms">‖dₖ‖.</param>
/// <param name="CenterLoss">L at the point.</param>
public sealed record SliceResult(IReadOnlyList<SliceDirection> Directions, double[] Alphas, double[] Betas, double[,] Loss, double[] DirectionNorms, double CenterLoss);

/// <summary>
/// Slices of the loss landscape around a point along chosen directions: the random and filter-normalized
/// slices of Li et al. (2018, "Visualizing the loss landscape of neural nets"), and the ones the manifold
/// of minima adds: tangent and normal to M, and Hessian eigenvectors.
/// </summary>
public static class LossSlice
{
    /// <summary>Copies of the grid of losses that exist at once: the array, the result's rows and the figure's cells.</summary>
    public const int GridCopies = 3;

    /// <summary>The bytes of a slice with <paramref name="grid"/> points per axis in <paramref name="dims"/> dimensions: 8·<see cref="GridCopies"/>·grid^dims (saturating).</summary>
    public static long RequiredBytes(int grid, int dims)
    {
        double cells = dims >= 2 ? (double)grid * grid : grid;
        double bytes = sizeof(double) * GridCopies * cells;
        return bytes >= long.MaxValue ? long.MaxValue : (long)bytes;
    }

    /// <summary>Refuses, before anything is allocated, a slice whose <see cref="RequiredBytes"/> exceed the budget of <paramref name="limits"/>.</summary>
    /// <exception cref="MemoryBudgetExceededException">grid^dims losses do not fit the budget.</exception>
    public static void RequireFits(int grid, int dims, RunLimits? limits = null) =>
        (limits ?? RunLimits.Default).Require(FormattableString.Invariant($"a {dims}D slice of {grid} points per axis ({(dims >= 2 ? $"{grid}²" : $"{grid}")} losses ×{GridCopies})"),
            RequiredBytes(grid, dims), "use a smaller grid", BudgetRemedy.Grid);

    /// <summary>Evaluates the slice. The model is restored to its point afterwards.</summary>
    /// <param name="map">The model and data at the slice's centre.</param>
    /// <param name="options">Directions, grid, range, seed.</param>
    /// <param name="limits">
    /// The budget of the grid (<see cref="RequiredBytes"/>), the factorization of J (tangent, normal) and the Lanczos basis
    /// (eigen); the token, checked before each grid point.
    /// </param>
    public static SliceResult Compute(IResidualProblem map, SliceOptions options, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Directions.Any(d => d is SliceDirection.Tangent or SliceDirection.Normal))
        {
            map.LossFunction.RequireResidualSum("a slice along directions tangent or normal to M");
        }
        limits ??= RunLimits.Default;
        if (options.Directions.Count is < 1 or > 2)
        {
            throw new LandscapeInputException("a slice takes one direction (1D) or two (2D)");
        }
        if (options.Grid < 2 || !(options.Range > 0) || !double.IsFinite(options.Range))
        {
            throw new LandscapeInputException("a slice needs at least 2 grid points per axis and a positive range");
        }
        RequireFits(options.Grid, options.Directions.Count, limits);
        using var scope = NewDisposeScope();
        var p0 = map.GetPoint();
        var rng = new Random(options.Seed);
        var directions = new List<Tensor>();
        var eigen = options.Directions.Contains(SliceDirection.Eigen) ? TopEigenvectors(map, options.Directions.Count(d => d == SliceDirection.Eigen), options.Seed, limits) : null;
        // Tangent and normal directions: one factorization of J at the point (the library's one route to ker J).
        using var factors = options.Directions.Any(d => d is SliceDirection.Tangent or SliceDirection.Normal) ? JacobianFactorization.At(map, limits: limits.WithoutProgress()) : null;
        int eigenUsed = 0;
        foreach (var kind in options.Directions)
        {
            var d = kind switch
            {
                SliceDirection.Random => Unit(Gaussian(rng, map.ParameterCount)),
                SliceDirection.Filter => FilterNormalize(map.Model, Gaussian(rng, map.ParameterCount), p0, options.IgnoreBias),
                SliceDirection.Tangent => Unit(factors!.TangentProjection(Gaussian(rng, map.ParameterCount))),
                SliceDirection.Normal => Unit(factors!.NormalComponent(Gaussian(rng, map.ParameterCount))),
                _ => eigen![eigenUsed++],
            };
            // A repeated kind: orthogonalize against the first direction (Gram–Schmidt), keep the norm.
            if (directions.Count == 1 && kind == options.Directions[0] && kind != SliceDirection.Eigen)
            {
                double norm = d.norm().item<double>();
                var first = directions[0] / directions[0].norm();
                d = d - first * first.dot(d);
                if (kind is SliceDirection.Tangent)
                {
                    d = factors!.TangentProjection(d);
                }
                else if (kind is SliceDirection.Normal)
                {
                    d = factors!.NormalComponent(d);
                }
                d = d.Times(norm / d.norm().item<double>());
            }
            directions.Add(d.DetachFromDisposeScope());
        }
        int g = options.Grid;
        // αᵢ = R·(2i/(g − 1) − 1): finite for every finite R, where −R + 2R·i/(g − 1) overflows 2R beyond 8.99·10³⁰⁷.
        var alphas = Enumerable.Range(0, g).Select(i => options.Range * (2.0 * i / (g - 1) - 1)).ToArray();
        var betas = directions.Count == 2 ? alphas.ToArray() : [];
        int columns = Math.Max(1, betas.Length);
        var loss = new double[g, columns];
        void MoveTo(int i, int j)
        {
            using var point = NewDisposeScope();
            var p = p0.Plus(directions[0].Times(alphas[i]));
            if (betas.Length > 0)
            {
                p = p.Plus(directions[1].Times(betas[j]));
            }
            map.SetPoint(p);
        }
        try
        {
            for (int i = 0; i < g; i++)
            {
                for (int j = 0; j < columns; j++)
                {
                    limits.ThrowIfCancellationRequested();
                    MoveTo(i, j);
                    loss[i, j] = map.Loss();
                }
            }
            RequireLosses(map, alphas, betas, loss, MoveTo);
        }
        finally
        {
            map.SetPoint(p0);
        }
        double center = map.Loss();
        FiniteLoss.Require(map, center, "at the slice's centre (the model's point)");
        var norms = directions.Select(d => d.norm().item<double>()).ToArray();
        foreach (var d in directions)
        {
            d.Dispose();
        }
        return new SliceResult(options.Directions.ToArray(), alphas, betas, loss, norms, center);
    }

    /// <summary>
    /// Refuses a grid whose loss is not finite, or underflows to 0 while the residuals are not 0, at some grid point
    /// (<see cref="FiniteLoss.Require"/>, the one rule for a loss), naming the grid point nearest the model's point of
    /// those and how many there are: a slice is drawn from every point of its grid, and ∞ or NaN has no place on a colour
    /// scale or an axis. A grid point with L = 0 and H = 0 (exactly on M) passes.
    /// </summary>
    /// <param name="map">The map; <paramref name="moveTo"/> sets its model to a grid point.</param>
    /// <param name="alphas">The grid's coordinates along d₁.</param>
    /// <param name="betas">Along d₂ (empty for 1D).</param>
    /// <param name="loss">L at every grid point.</param>
    /// <param name="moveTo">Moves the model to grid point (i, j).</param>
    private static void RequireLosses(IResidualProblem map, double[] alphas, double[] betas, double[,] loss, Action<int, int> moveTo)
    {
        int rows = loss.GetLength(0), columns = loss.GetLength(1);
        var suspects = new List<(int I, int J, double Distance)>();
        int nonFinite = 0, zero = 0;
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < columns; j++)
            {
                if (!double.IsFinite(loss[i, j]) || loss[i, j] == 0)
                {
                    nonFinite += double.IsFinite(loss[i, j]) ? 0 : 1;
                    zero += loss[i, j] == 0 ? 1 : 0;
                    double beta = betas.Length > 0 ? betas[j] : 0;
                    // |α|, |β| ≤ R ≤ 1.8e308: the larger of the two orders the points by distance without overflowing a sum of squares.
                    suspects.Add((i, j, Math.Max(Math.Abs(alphas[i]), Math.Abs(beta))));
                }
            }
        }
        string G(double v) => v.ToString("G4", System.Globalization.CultureInfo.InvariantCulture);
        var counts = new List<string>();
        if (nonFinite > 0)
        {
            counts.Add($"{nonFinite} of the {rows * columns} grid points where L is not finite");
        }
        if (zero > 0)
        {
            counts.Add($"{zero} where L = 0");
        }
        foreach (var (i, j, _) in suspects.OrderBy(s => s.Distance))
        {
            string coordinates = betas.Length > 0 ? $"(α, β) = ({G(alphas[i])}, {G(betas[j])})" : $"α = {G(alphas[i])}";
            moveTo(i, j);
            FiniteLoss.Require(map, loss[i, j], $"at the slice's grid point {coordinates}, the nearest to the model's point of the {string.Join(" and ", counts)}",
                "use a smaller range");
        }
    }

    /// <summary>
    /// Filter normalization (Li et al. 2018, Section 4): for every filter — for an MLP, one unit: its row of
    /// incoming weights together with its bias — d_filter ← d_filter·‖θ_filter‖/‖d_filter‖. Each bias is
    /// normalized exactly once, as part of its unit (a known peer normalizes biases a second time as
    /// separate "filters"); with <paramref name="ignoreBias"/> bias entries are zero. For a
    /// <see cref="SequentialNetwork"/> a filter is a convolution's output channel (W[o, :, :, :] with b[o]) or a linear
    /// layer's unit, and a batch norm's channel (γ_c, β_c) is one filter; with <paramref name="ignoreBias"/> biases and
    /// batch-norm entries are zero (Li et al.'s <c>ignore='biasbn'</c>). Other models are normalized per leaf row.
    /// </summary>
    public static Tensor FilterNormalize(IDifferentiableModel model, Tensor direction, Tensor point, bool ignoreBias)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var scope = NewDisposeScope();
        var d = direction.clone();
        if (model is NetworkModel { Network: Mlp mlp })
        {
            foreach (var layer in mlp.Layers)
            {
                var dw = Mlp.Weight(d, layer);
                var db = Mlp.Bias(d, layer);
                var tw = Mlp.Weight(point, layer);
                var tb = Mlp.Bias(point, layer);
                if (ignoreBias)
                {
                    db.zero_();
                }
                // Per unit o: the filter is (W[o, :], b[o]).
                var thetaNorm = tw.Power(2).sum([1L]).Plus(ignoreBias ? zeros_like(tb) : tb.Power(2)).sqrt();
                var dNorm = dw.Power(2).sum([1L]).Plus(db.Power(2)).sqrt().AtLeast(1e-300);
                var factor = thetaNorm / dNorm;
                dw.mul_(factor.unsqueeze(1));
                db.mul_(factor);
            }
            return d.MoveToOuterDisposeScope();
        }
        if (model is NetworkModel { Network: SequentialNetwork seq })
        {
            foreach (var layer in seq.Layers.Where(l => l.Count > 0))
            {
                // Per filter f (a row of the weight block, with its bias or β entry): d_f ← d_f·‖θ_f‖/‖d_f‖.
                long filters = layer.BiasCount;
                var dw = d.narrow(0, layer.Offset, layer.WeightCount).view(filters, -1);
                var db = d.narrow(0, layer.Offset + layer.WeightCount, layer.BiasCount).view(filters, 1);
                var tw = point.narrow(0, layer.Offset, layer.WeightCount).view(filters, -1);
                var tb = point.narrow(0, layer.Offset + layer.WeightCount, layer.BiasCount).view(filters, 1);
                bool batchNorm = layer.Layer is BatchNormLayer;
                if (ignoreBias)
                {
                    db.zero_();
                    if (batchNorm)
                    {
                        dw.zero_();
                        continue;
                    }
                }
                var thetaNorm = tw.Power(2).sum([1L]).Plus(ignoreBias ? zeros(filters, dtype: tb.dtype) : tb.Power(2).sum([1L])).sqrt();
                var dNorm = dw.Power(2).sum([1L]).Plus(db.Power(2).sum([1L])).sqrt().AtLeast(1e-300);
                var factor = (thetaNorm / dNorm).unsqueeze(1);
                dw.mul_(factor);
                db.mul_(factor);
            }
            return d.MoveToOuterDisposeScope();
        }
        // Generic model: each leaf's rows (dim 0) are its filters; 1-D leaves (biases) are one filter each.
        long offset = 0;
        foreach (var leaf in model.Leaves)
        {
            long count = leaf.numel();
            var dl = d.narrow(0, offset, count).view(leaf.shape.Length > 1 ? leaf.shape[0] : 1, -1);
            var tl = point.narrow(0, offset, count).view(leaf.shape.Length > 1 ? leaf.shape[0] : 1, -1);
            if (ignoreBias && leaf.dim() == 1)
            {
                dl.zero_();
            }
            else
            {
                dl.mul_(tl.norm(1, keepdim: true) / dl.norm(1, keepdim: true).AtLeast(1e-300));
            }
            offset += count;
        }
        return d.MoveToOuterDisposeScope();
    }

    private static Tensor[] TopEigenvectors(IResidualProblem map, int k, int seed, RunLimits limits)
    {
        var op = new HessianOperator(map);
        var result = Lanczos.Eigenpairs(op, new LanczosOptions(K: Math.Max(1, k), Which: SpectrumEnd.Largest, Seed: seed), limits);
        return Enumerable.Range(0, Math.Max(1, k)).Select(i => result.Eigenvectors.select(1, i).clone()).ToArray();
    }

    private static Tensor Gaussian(Random rng, int n) => tensor(SeededNormal.Vector(rng, n));

    private static Tensor Unit(Tensor v) => v / v.norm();
}
