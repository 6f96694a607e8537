using LossLandscape.Models;
using LossLandscape.Models.Activations;
using static TorchSharp.torch;
using LossLandscape.Engine;

namespace LossLandscape.Construction;

/// <summary>
/// Lemma 3.3's triangular system for one target block: sort the projections uᵢ of the inputs, put unit k's breakpoint
/// c_k between u_{k−1} and u_k, so that A_ik = σ(α(uᵢ − c_k)) vanishes for i &lt; k (σ rectified) and is positive on the
/// diagonal, and solve the lower-triangular A V = Y for the output weights by forward substitution.
/// </summary>
/// <remarks>
/// The lemma leaves free the direction a, the scale α and where each breakpoint sits in its gap (θ). Directions are
/// ranked by <see cref="ProjectionDirection"/>; for the best <see cref="DirectionsSolved"/> of them every (α, θ) of
/// <see cref="ScaledRanges"/> × <see cref="BreakpointFractions"/> is solved, and the measured residual (not a bound)
/// decides.
/// </remarks>
internal static class Lemma33TriangularSystem
{
    /// <summary>
    /// The scaled ranges α·(max uᵢ − min uᵢ) tried: from 0.3, where smooLU-like σ are still curved across the data, to 1e7,
    /// where σ(α·x) is its piecewise-linear limit even at the smallest gaps, in half-decade steps up to 100 and decades beyond (the
    /// measured residual, not the grid, picks the winner). Chosen to span σ's regimes.
    /// </summary>
    public static readonly double[] ScaledRanges = [0.3, 1, 3, 10, 30, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7];

    /// <summary>
    /// ReLU is positively homogeneous (σ(αx) = ασ(x)): the scale only rescales V, so one scaled range suffices.
    /// </summary>
    public static readonly double[] ReluScaledRanges = [1.0];

    /// <summary>
    /// θ, where unit k's breakpoint sits in its gap, c_k = u_{k−1} + θ(u_k − u_{k−1}): ½, the midpoint (no neighbour
    /// favoured), and 0.1, near the lower neighbour, which makes the diagonal A_kk = σ(α(1 − θ)·gap_k) larger and the
    /// solve better conditioned where gaps are uneven. Chosen: the two ends of the useful range (θ near 1 would make the
    /// diagonal vanish), each candidate solved and measured.
    /// </summary>
    public static readonly double[] BreakpointFractions = [0.5, 0.1];

    /// <summary>
    /// How many of the best-ranked directions are solved on the whole (α, θ) grid: 3. Chosen: the cancellation score
    /// ranks directions well but not exactly, so a few runners-up are measured too, at 22 triangular solves each.
    /// </summary>
    public const int DirectionsSolved = 3;

    /// <summary>
    /// Smallest admissible |A_kk| relative to the largest: 1e−12. Below it (smooLU deep in its flat e^{−1/x} region)
    /// κ(A) ≥ 1e12 and float64 keeps fewer than four digits of V (ε·κ ≳ 1e−4): a usable residual but a useless point,
    /// with κ(A) of 1e80 and more seen in practice and σmin(J) below any certificate's resolution.
    /// </summary>
    public const double DiagonalFloor = 1e-12;

    /// <summary>
    /// Candidates whose residual is at most this fraction of the goal (1%) all meet it with two decades to spare for
    /// the polish; among them the one with the smallest largest weight wins (balanced weights keep J well conditioned).
    /// </summary>
    public const double GoalWindow = 1e-2;

    /// <summary>
    /// When no candidate reaches <see cref="GoalWindow"/>: those within this factor (2) of the best residual are treated
    /// as equally accurate (residuals at the rounding floor differ by such factors with the summation order), and the
    /// one whose sum cancels least wins.
    /// </summary>
    public const double NearBestFactor = 2;

    /// <summary>
    /// Least-squares directions are fitted to at most this many target columns (10, digits' one-hot width) plus the
    /// class-index target; more columns add candidates without changing the best order.
    /// </summary>
    public const int MaxFittedTargets = 10;

    /// <summary>
    /// The ridge of the least-squares directions, relative to tr(XᵀX): 1e−8. It regularises collinear inputs (digits
    /// has constant pixels) while moving a well-posed fit by about 1e−8 relative, invisible in a direction used only for
    /// the order it induces.
    /// </summary>
    public const double RelativeRidge = 1e-8;

    /// <summary>One solved (direction, α, θ): breakpoints, output weights and how well they interpolate.</summary>
    public sealed record Candidate(double Alpha, double Theta, double[] Breakpoints, double[,] V, double Residual, double Amplification, double[] Sorted, Activation Sigma)
    {
        /// <summary>Where the direction came from.</summary>
        public string Name { get; init; } = "";

        /// <summary>The projection direction a.</summary>
        public double[] A { get; init; } = [];

        /// <summary>The depth prefix carrying a·x to the last hidden layer (Corollary 3.4).</summary>
        public Corollary34Prefix.Prefix Prefix { get; init; } = new([], []);

        /// <summary>The data rows in the order of their projections.</summary>
        public int[] Order { get; init; } = [];

        /// <summary>min gap / range of the sorted projections.</summary>
        public double RelativeMinGap { get; init; }

        /// <summary>The smallest gap of the sorted projections.</summary>
        public double MinGap { get; init; }

        /// <summary>max − min of the projections.</summary>
        public double Range { get; init; }

        /// <summary>The largest weight of the candidate (for the tie-break of <see cref="GoalWindow"/>).</summary>
        public double Magnitude { get; init; }
    }

    /// <summary>The best (direction, α, θ) candidate for one target block y (d × ℓ) on inputs x (d × p).</summary>
    /// <exception cref="OperationCanceledException">The token of <paramref name="limits"/> was cancelled (checked in the direction search and before each (α, θ) solve).</exception>
    public static Candidate BestCandidate(double[][] x, double[][] y, ConstructionOptions options, double goalEstimate, ref int tried, RunLimits? limits = null)
    {
        limits ??= RunLimits.Default;
        var sigma = options.Activation;
        int d = x.Length, p = x[0].Length, l = y[0].Length;
        // 1. Directions, chosen for the cancellation their sorted order forces (ProjectionDirection).
        ProjectionDirection.Scored[] directions;
        using (var scope = NewDisposeScope())
        {
            var xt = tensor(x.SelectMany(r => r).ToArray(), [d, p]);
            var yt = tensor(y.SelectMany(r => r).ToArray(), [d, l]);
            directions = ProjectionDirection.Search(xt, yt, CandidateDirections(x, y), options.Seed, DirectionsSolved, limits).ToArray();
        }
        if (directions.Length == 0)
        {
            throw new LandscapeInputException("no direction separates the inputs (are they distinct?)");
        }

        // 2. For each, carry the projection through the first T − 1 layers, then solve every (α, θ).
        var candidates = new List<Candidate>();
        foreach (var (name, a, _) in directions)
        {
            var prefix = Corollary34Prefix.Carry(Project(x, a), sigma, options.HiddenWidths.Count - 1);
            var order = Enumerable.Range(0, d).OrderBy(i => prefix.Scalars[i]).ToArray();
            var u = order.Select(i => prefix.Scalars[i]).ToArray();
            var ySorted = order.Select(i => y[i]).ToArray();
            double range = u[^1] - u[0];
            double minGap = Enumerable.Range(1, d - 1).Select(k => u[k] - u[k - 1]).DefaultIfEmpty(range).Min();
            double aNorm = a.Max(Math.Abs) * (prefix.Layers.Length > 0 ? Math.Abs(prefix.Layers[0].Weight) : 1.0);
            var ranges = sigma is Relu ? ReluScaledRanges : ScaledRanges;
            foreach (double r in ranges)
            {
                double alpha = range > 0 ? r / range : 1.0;
                foreach (double theta in BreakpointFractions)
                {
                    limits.ThrowIfCancellationRequested();
                    tried++;
                    if (Solve(u, ySorted, alpha, theta, sigma, minGap) is { } c)
                    {
                        candidates.Add(c with
                        {
                            Name = name, A = a, Prefix = prefix, Order = order, RelativeMinGap = range > 0 ? minGap / range : 0, MinGap = minGap, Range = range,
                            Magnitude = Math.Max(c.Magnitude, prefix.Layers.Length > 0 ? alpha : alpha * aNorm),
                        });
                    }
                }
            }
        }
        if (candidates.Count == 0)
        {
            throw new LandscapeInputException("the triangular system was singular for every candidate (σ vanished on a diagonal)");
        }
        double bestResidual = candidates.Min(c => c.Residual);
        if (bestResidual <= GoalWindow * goalEstimate)
        {
            return candidates.Where(c => c.Residual <= GoalWindow * goalEstimate).OrderBy(c => c.Magnitude).First();
        }
        // The goal is tight: the smallest cancellation among the candidates near the best residual.
        return candidates.Where(c => c.Residual <= NearBestFactor * bestResidual).OrderBy(c => c.Amplification).First();
    }

    /// <summary>κ₁(A) = ‖A‖₁‖A⁻¹‖₁ of the candidate's triangular matrix.</summary>
    public static double Condition(Candidate c)
    {
        using var scope = NewDisposeScope();
        var a = Matrix(c.Sorted, c.Breakpoints, c.Alpha, c.Sigma);
        var inverse = linalg.solve_triangular(a, eye(a.shape[0]), upper: false);
        double norm = a.abs().sum([0L]).max().item<double>();
        double inverseNorm = inverse.abs().sum([0L]).max().item<double>();
        return norm * inverseNorm;
    }

    /// <summary>
    /// Writes the last hidden layer (unit k: weight α on its input, bias −α·c_k; for one hidden layer the input is x and
    /// the weight α·a) and the output weights V of a single copy; the depth prefix writes the layers before.
    /// </summary>
    public static double[] Assemble(Mlp mlp, Candidate best)
    {
        var p = new double[mlp.ParameterCount];
        var layers = mlp.Layers;
        int T = layers.Count - 1;
        int d = best.Order.Length;
        if (T == 1)
        {
            var first = layers[0];
            for (int k = 0; k < d; k++)
            {
                for (int j = 0; j < first.In; j++)
                {
                    p[first.WeightOffset + k * first.In + j] = best.Alpha * best.A[j];
                }
                p[first.BiasOffset + k] = -best.Alpha * best.Breakpoints[k];
            }
        }
        else
        {
            Corollary34Prefix.Write(p, layers, best.Prefix, best.A);
            var last = layers[T - 1];
            for (int k = 0; k < d; k++)
            {
                p[last.WeightOffset + k * last.In] = best.Alpha;
                p[last.BiasOffset + k] = -best.Alpha * best.Breakpoints[k];
            }
        }
        var output = layers[T];
        for (int j = 0; j < output.Out; j++)
        {
            for (int k = 0; k < d; k++)
            {
                p[output.WeightOffset + j * output.In + k] = best.V[k, j];
            }
        }
        return p;
    }

    /// <summary>The projections a·xᵢ.</summary>
    public static double[] Project(double[][] x, double[] a) => x.Select(r => r.Select((v, j) => v * a[j]).Sum()).ToArray();

    private static IEnumerable<(string Name, double[] A)> CandidateDirections(double[][] x, double[][] y)
    {
        int l = y[0].Length;
        // Least squares of each target, and of Σ_j j·y_j (the class index of one-hot targets): sorting by a fitted
        // target makes neighbours alike, so few slopes are steep.
        var targets = Enumerable.Range(0, Math.Min(l, MaxFittedTargets)).Select(j => y.Select(r => r[j]).ToArray()).ToList();
        if (l > 1)
        {
            targets.Add(y.Select(r => r.Select((v, j) => v * j).Sum()).ToArray());
        }
        foreach (var (t, k) in targets.Select((t, k) => (t, k)))
        {
            if (LeastSquaresDirection(x, t) is { } a)
            {
                yield return ($"least squares #{k}", a);
            }
        }
    }

    private static double[]? LeastSquaresDirection(double[][] x, double[] t)
    {
        using var scope = NewDisposeScope();
        var X = tensor(x.SelectMany(r => r).ToArray(), [x.Length, x[0].Length]);
        var xc = X - X.mean([0], keepdim: true);
        var tc = tensor(t).Minus(t.Average());
        var gram = xc.t().matmul(xc);
        // max(·, 1e−300): a positive ridge even for all-constant inputs, where the trace is 0.
        double ridge = RelativeRidge * Math.Max(gram.trace().item<double>(), 1e-300);
        var a = linalg.solve(gram.Plus(eye(x[0].Length).Times(ridge)), xc.t().matmul(tc));
        var values = a.data<double>().ToArray();
        return values.All(double.IsFinite) && values.Any(v => v != 0) ? values : null;
    }

    private static Candidate? Solve(double[] u, double[][] ySorted, double alpha, double theta, Activation sigma, double minGap)
    {
        int d = u.Length, l = ySorted[0].Length;
        var c = new double[d];
        // Unit 0 has no lower neighbour: its breakpoint sits one gap (at least the smallest) below u₀.
        double firstGap = d > 1 ? u[1] - u[0] : 1.0;
        c[0] = u[0] - Math.Max(firstGap, minGap);
        for (int k = 1; k < d; k++)
        {
            c[k] = u[k - 1] + theta * (u[k] - u[k - 1]);
        }
        using var scope = NewDisposeScope();
        var a = Matrix(u, c, alpha, sigma);
        var diagonal = a.diagonal().abs();
        double diag = diagonal.min().item<double>();
        if (!(diag > DiagonalFloor * diagonal.max().item<double>()))
        {
            return null;
        }
        var y = tensor(ySorted.SelectMany(r => r).ToArray(), [d, l]);
        var v = linalg.solve_triangular(a, y, upper: false);
        if (!v.isfinite().all().item<bool>())
        {
            return null;
        }
        double residual = (a.matmul(v) - y).abs().max().item<double>();
        double amplification = a.abs().matmul(v.abs()).max().item<double>();
        var vArray = new double[d, l];
        var flat = v.data<double>().ToArray();
        Buffer.BlockCopy(flat, 0, vArray, 0, flat.Length * sizeof(double));
        double magnitude = Math.Max(v.abs().max().item<double>(), alpha * c.Max(Math.Abs));
        return new Candidate(alpha, theta, c, vArray, residual, amplification, u, sigma) { Magnitude = magnitude };
    }

    /// <summary>A_ik = σ(α·u_i − α·c_k), as the network computes it (weight α, bias −α c_k); zero above the diagonal.</summary>
    private static Tensor Matrix(double[] u, double[] c, double alpha, Activation sigma)
    {
        using var scope = NewDisposeScope();
        var ut = tensor(u).unsqueeze(1).Times(alpha);
        var bias = tensor(c).Times(-alpha).unsqueeze(0);
        return sigma.Apply(ut.Plus(bias)).tril().MoveToOuterDisposeScope();
    }
}
