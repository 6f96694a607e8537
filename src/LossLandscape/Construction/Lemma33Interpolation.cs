using System.Diagnostics;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using static TorchSharp.torch;

namespace LossLandscape.Construction;

/// <summary>Settings of <see cref="Lemma33Interpolation"/>.</summary>
/// <param name="Activation">A rectified σ (Definition 3.1).</param>
/// <param name="HiddenWidths">h₁..h_T; the last must be ≥ d (Corollary 3.4), the others ≥ 1.</param>
/// <param name="Scaling">The input scaling stored in the model (e.g. from --standardize), or null.</param>
/// <param name="Seed">Seed of the random candidate directions.</param>
/// <param name="Polish">Polish onto M with Gauss–Newton steps after the triangular solve.</param>
/// <param name="RelativeGoal">The goal max|f(xᵢ) − yᵢ| ≤ RelativeGoal·max(1, max|yᵢ|); default 1e−10 (the project's acceptance goal).</param>
/// <param name="GramBudgetBytes">Full Gauss–Newton steps form the ℓd × ℓd Gram matrix; above this size only the output layer is polished.</param>
public sealed record ConstructionOptions(
    Activation Activation,
    IReadOnlyList<int> HiddenWidths,
    InputScaling? Scaling = null,
    int Seed = 0,
    bool Polish = true,
    double RelativeGoal = 1e-10,
    long GramBudgetBytes = 512L << 20);

/// <summary>What the construction chose and how well conditioned it came out.</summary>
/// <param name="Direction">Where the projection direction a came from ("random #k", "least squares", "principal component").</param>
/// <param name="RelativeMinGap">min gap / range of the sorted projections a·xᵢ (the direction's quality).</param>
/// <param name="ScaledMinGap">The smallest gap after scaling, α·min gap: the argument σ sees on the diagonal.</param>
/// <param name="ScaledRange">α·(max − min) of the projections.</param>
/// <param name="BiasFraction">θ: unit k's breakpoint sits at s_{k−1} + θ(s_k − s_{k−1}).</param>
/// <param name="TriangularCondition">κ₁(A) = ‖A‖₁‖A⁻¹‖₁ of the lower-triangular system.</param>
/// <param name="Amplification">max_i Σ_k |A_ik||V_kj| / max(1, max|y|): how much the sum f(xᵢ) cancels; float64 rounding in f is about ε times this.</param>
/// <param name="TriangularResidual">max|f(xᵢ) − yᵢ| right after the triangular solve (the network's own forward pass).</param>
/// <param name="OutputLayerSteps">Gauss–Newton steps on the output layer alone (a triangular solve per output).</param>
/// <param name="FullSteps">Full minimum-norm Gauss–Newton steps p ← p − J⁺H.</param>
/// <param name="FullStepsSkipped">Why full steps were not taken, or null.</param>
/// <param name="MaxResidual">max|f(xᵢ) − yᵢ| at the end.</param>
/// <param name="Goal">RelativeGoal·max(1, max|y|).</param>
/// <param name="Candidates">How many (direction, scale, θ) candidates were tried.</param>
/// <param name="Seconds">Wall time.</param>
public sealed record ConstructionDiagnostics(
    string Direction,
    double RelativeMinGap,
    double ScaledMinGap,
    double ScaledRange,
    double BiasFraction,
    double TriangularCondition,
    double Amplification,
    double TriangularResidual,
    int OutputLayerSteps,
    int FullSteps,
    string? FullStepsSkipped,
    double MaxResidual,
    double Goal,
    int Candidates,
    double Seconds)
{
    /// <summary>Whether max|f(xᵢ) − yᵢ| ≤ goal.</summary>
    public bool MeetsGoal => MaxResidual <= Goal;
}

/// <summary>The constructed point and its diagnostics.</summary>
public sealed record ConstructionResult(NetworkPoint Point, ConstructionDiagnostics Diagnostics);

/// <summary>
/// Zero training error by construction: Lemma 3.3 (one hidden layer of width h ≥ d), Corollary 3.4
/// (T hidden layers, the last of width ≥ d) and Remark 4.2 (ℓ outputs), for any rectified σ.
/// </summary>
/// <remarks>
/// <para>The proof of Lemma 3.3: choose a with distinct projections sᵢ = a·xᵢ, sort them; unit k has
/// weights α·a and its breakpoint c_k between s_{k−1} and s_k, so A_ik = σ(α(sᵢ − c_k)) vanishes for
/// i &lt; k (σ is rectified) and is positive on the diagonal; the output weights solve the lower-triangular
/// system A V = Y by forward substitution; units beyond d get zero weights. For Corollary 3.4 the first
/// T − 1 layers carry the scalar sᵢ through one unit each, mapped into a window where σ is increasing
/// (the map preserves distinctness because σ is rectified).</para>
/// <para>The lemma leaves free the direction a, the scale α and where each breakpoint sits in its gap
/// (θ), and that freedom decides whether the construction is usable in float64: f(xᵢ) = Σ_k V_k A_ik
/// cancels, and its rounding error is about ε·Σ_k |V_k||A_ik|. Done literally on digits (a random
/// direction, midpoints, α = 1) the residual is about 1e17. So the candidates are scored by measurement:
/// directions by the cancellation they force (Σ_k ‖y_k − y_{k−1}‖·range/gap_k over the sorted order,
/// the size of the slopes a piecewise-linear interpolant needs), then for the best few every (α, θ) on a
/// grid is solved and the one with the smallest measured residual wins. Then Gauss–Newton polishes.</para>
/// </remarks>
public static class Lemma33Interpolation
{
    private static readonly double[] RangeGrid = [0.3, 1, 3, 10, 30, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7];
    private static readonly double[] ThetaGrid = [0.5, 0.1];
    private const int DirectionsSolved = 3;

    /// <summary>Builds the network and the point; <see cref="ArgumentException"/> for unusable input (the message says why).</summary>
    public static ConstructionResult Construct(Dataset data, ConstructionOptions options)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        TorchRuntime.EnsureInitialized();
        var watch = Stopwatch.StartNew();
        Validate(data, options);
        var sigma = options.Activation;
        int d = data.Count, p = data.InputDim, l = data.OutputDim;
        var scaled = options.Scaling is null ? data : options.Scaling.Apply(data);
        var x = Rows(scaled);
        var y = Enumerable.Range(0, d).Select(data.TargetRow).ToArray();

        // 1–2. Remark 4.2 ("ℓ copies of the network, one for each component of yᵢ"): when the last hidden
        // layer has room, each target block gets its own d units and its own direction, chosen for the
        // cancellation of that block alone (see Decompose). Otherwise one copy fits all ℓ outputs.
        double goalEstimate = options.RelativeGoal * Math.Max(1.0, data.MaxAbsTarget());
        var blocks = Decompose(y, options.HiddenWidths[^1], options.HiddenWidths.Count);
        int tried = 0;
        var bests = blocks.Select(t => BestCandidate(x, t, options, goalEstimate / blocks.Count, ref tried)).ToArray();
        var best = bests.OrderByDescending(b => b.Amplification).First();

        // 3. The parameters, laid out as the MLP file format stores them.
        var mlp = new Mlp(p, options.HiddenWidths.Select(w => new HiddenLayer(w, sigma)).ToArray(), l).WithScaling(options.Scaling);
        var parameters = bests.Length == 1 ? Assemble(mlp, best) : AssembleCopies(mlp, bests);
        var point = new NetworkPoint(mlp, parameters);
        double scale = Math.Max(1.0, data.MaxAbsTarget());
        double goal = options.RelativeGoal * scale;
        double condition = bests.Max(TriangularCondition);

        using var model = point.ToModel();
        var map = new ResidualMap(model, data);
        double triangular = MaxResidual(map);
        int outputSteps = 0, fullSteps = 0;
        string? skipped = null;
        if (options.Polish)
        {
            // 4a. Gauss–Newton on the output layer alone: per output, a triangular solve with the network's
            // own last-layer activations (iterative refinement of step 2 in the arithmetic of the forward pass).
            double current = triangular;
            for (int step = 0; step < 4 && current > goal * 1e-3; step++)
            {
                var before = ParameterVector.Get(model);
                OutputLayerStep(mlp, model, data, bests[0].Order);
                double next = MaxResidual(map);
                if (!(next < current))
                {
                    ParameterVector.Set(model, before);
                    break;
                }
                current = next;
                outputSteps++;
            }

            // 4b. Full minimum-norm steps p ← p − J⁺H(p), when the ℓd × ℓd Gram matrix fits the budget.
            long gramBytes = 8L * d * l * d * l;
            if (gramBytes * 3 > options.GramBudgetBytes)
            {
                skipped = $"the ℓd × ℓd Gram matrix ({gramBytes / 1e6:0} MB) exceeds the budget; polished the output layer only";
            }
            else if (current > goal * 1e-3)
            {
                var gn = GaussNewtonProjection.Project(map, new GaussNewtonOptions(goal * 1e-3, MaxSteps: 8));
                fullSteps = gn.Steps;
            }
            parameters = model.ToArray();
        }
        double final = MaxResidual(map);
        string direction = bests.Length == 1 ? best.Name : $"{bests.Length} copies (Remark 4.2), one direction each; worst: {best.Name}";
        var diagnostics = new ConstructionDiagnostics(direction, best.RelativeMinGap, best.Alpha * best.MinGap, best.Alpha * best.Range, best.Theta,
            condition, bests.Sum(b => b.Amplification) / scale, triangular, outputSteps, fullSteps, skipped, final, goal, tried, watch.Elapsed.TotalSeconds);
        return new ConstructionResult(new NetworkPoint(mlp, parameters), diagnostics);
    }

    /// <summary>Steps 1–2 of the construction for one target block: the best (direction, α, θ) candidate.</summary>
    private static Candidate BestCandidate(double[][] x, double[][] y, ConstructionOptions options, double goalEstimate, ref int tried)
    {
        var sigma = options.Activation;
        int d = x.Length, p = x[0].Length, l = y[0].Length;
        // 1. Directions, chosen for the cancellation their sorted order forces (ProjectionDirection).
        ProjectionDirection.Scored[] directions;
        using (var scope = NewDisposeScope())
        {
            var xt = tensor(x.SelectMany(r => r).ToArray(), [d, p]);
            var yt = tensor(y.SelectMany(r => r).ToArray(), [d, l]);
            directions = ProjectionDirection.Search(xt, yt, CandidateDirections(x, y), options.Seed, DirectionsSolved).ToArray();
        }
        if (directions.Length == 0)
        {
            throw new ArgumentException("no direction separates the inputs (are they distinct?)");
        }

        // 2. For each, carry the projection through the first T − 1 layers, then solve every (α, θ).
        var candidates = new List<Candidate>();
        foreach (var (name, a, _) in directions)
        {
            var prefix = CarryThroughPrefix(Project(x, a), sigma, options.HiddenWidths.Count - 1);
            var order = Enumerable.Range(0, d).OrderBy(i => prefix.Scalars[i]).ToArray();
            var u = order.Select(i => prefix.Scalars[i]).ToArray();
            var ySorted = order.Select(i => y[i]).ToArray();
            double range = u[^1] - u[0];
            double minGap = Enumerable.Range(1, d - 1).Select(k => u[k] - u[k - 1]).DefaultIfEmpty(range).Min();
            double aNorm = a.Max(Math.Abs) * (prefix.Layers.Length > 0 ? Math.Abs(prefix.Layers[0].Weight) : 1.0);
            var ranges = sigma is Relu ? [1.0] : RangeGrid;
            foreach (double r in ranges)
            {
                double alpha = range > 0 ? r / range : 1.0;
                foreach (double theta in ThetaGrid)
                {
                    tried++;
                    if (Solve(u, ySorted, alpha, theta, sigma, minGap) is { } c)
                    {
                        candidates.Add(c with
                        {
                            Name = name, A = a, Prefix = prefix, Order = order, RelativeMinGap = range > 0 ? minGap / range : 0, MinGap = minGap, Range = range,
                            Magnitude = Math.Max(c.Magnitude, (prefix.Layers.Length > 0 ? alpha : alpha * aNorm)),
                        });
                    }
                }
            }
        }
        if (candidates.Count == 0)
        {
            throw new ArgumentException("the triangular system was singular for every candidate (σ vanished on a diagonal)");
        }
        // Among the candidates whose residual is at most 1% of the goal, the one with the smallest largest
        // weight: balanced weights keep J (and so the certificate) well conditioned. If none is, the one with
        // the least cancellation among those within a factor 2 of the best residual.
        double bestResidual = candidates.Min(c => c.Residual);
        if (bestResidual <= 1e-2 * goalEstimate)
        {
            return candidates.Where(c => c.Residual <= 1e-2 * goalEstimate).OrderBy(c => c.Magnitude).First();
        }
        // The goal is tight: the smallest cancellation among the candidates near the best residual.
        return candidates.Where(c => c.Residual <= 2 * bestResidual).OrderBy(c => c.Amplification).First();

    }

    /// <summary>
    /// The target blocks of Remark 4.2's copies, when the last hidden layer has room for K·d units in a
    /// one-hidden-layer network: for ℓ &gt; 1, one block per output column (T_j = y_j e_jᵀ); for ℓ = 1 with at
    /// most 32 distinct values, one block per nonzero value v (T_v = y·1[y = v]), so each copy interpolates an
    /// indicator whose sorted order changes value only where that class meets the others. Σ T = y. Otherwise
    /// one block, y itself.
    /// </summary>
    private static List<double[][]> Decompose(double[][] y, int lastWidth, int depth)
    {
        int d = y.Length, l = y[0].Length;
        var single = new List<double[][]> { y };
        if (depth != 1)
        {
            return single;
        }
        List<double[][]> blocks;
        if (l > 1)
        {
            blocks = Enumerable.Range(0, l)
                .Where(j => y.Any(r => r[j] != 0))
                .Select(j => y.Select(r => r.Select((v, jj) => jj == j ? v : 0.0).ToArray()).ToArray())
                .ToList();
        }
        else
        {
            var values = y.Select(r => r[0]).Where(v => v != 0).Distinct().ToArray();
            if (values.Length > 32)
            {
                return single;
            }
            blocks = values.Select(v => y.Select(r => new[] { r[0] == v ? v : 0.0 }).ToArray()).ToList();
        }
        return blocks.Count > 1 && (long)blocks.Count * d <= lastWidth ? blocks : single;
    }

    /// <summary>
    /// How many copies Remark 4.2's decomposition would use for these targets (1 when it does not apply):
    /// with a last hidden width of at least that many times d, each copy gets its own direction.
    /// </summary>
    public static int CopiesFor(Dataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        var y = Enumerable.Range(0, data.Count).Select(data.TargetRow).ToArray();
        return Decompose(y, int.MaxValue, 1).Count;
    }

    /// <summary>Copies side by side: copy c uses hidden units c·d … c·d + d − 1 and adds its V_c to the outputs.</summary>
    private static double[] AssembleCopies(Mlp mlp, Candidate[] copies)
    {
        var p = new double[mlp.ParameterCount];
        var first = mlp.Layers[0];
        var output = mlp.Layers[1];
        int d = copies[0].Order.Length;
        for (int c = 0; c < copies.Length; c++)
        {
            var copy = copies[c];
            for (int k = 0; k < d; k++)
            {
                int unit = c * d + k;
                for (int j = 0; j < first.In; j++)
                {
                    p[first.WeightOffset + unit * first.In + j] = copy.Alpha * copy.A[j];
                }
                p[first.BiasOffset + unit] = -copy.Alpha * copy.Breakpoints[k];
                for (int o = 0; o < output.Out; o++)
                {
                    p[output.WeightOffset + o * output.In + unit] = copy.V[k, o];
                }
            }
        }
        return p;
    }

    /// <summary>Checks the hypotheses of Lemma 3.3 / Corollary 3.4; the messages name the fix.</summary>
    public static void Validate(Dataset data, ConstructionOptions options)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        if (!options.Activation.IsRectified)
        {
            throw new ArgumentException($"activation '{options.Activation.Name}' is not rectified (Definition 3.1); the construction needs one of: {string.Join(", ", ActivationRegistry.All.Where(a => a.IsRectified).Select(a => a.Name))}");
        }
        if (options.HiddenWidths.Count == 0 || options.HiddenWidths.Any(w => w < 1))
        {
            throw new ArgumentException("the construction needs at least one hidden layer, every width ≥ 1");
        }
        if (options.HiddenWidths[^1] < data.Count)
        {
            throw new ArgumentException($"last hidden width h = {options.HiddenWidths[^1]} is smaller than d = {data.Count}; Lemma 3.3 needs h ≥ d, so the smallest width that works is {data.Count}");
        }
        var duplicates = data.FindDuplicateInputs();
        if (duplicates.Count > 0)
        {
            var list = string.Join("; ", duplicates.Take(5).Select(g => "rows " + string.Join(", ", g.Select(i => i + 1))));
            throw new ArgumentException($"{duplicates.Count} set(s) of duplicate inputs ({list}{(duplicates.Count > 5 ? "; …" : "")}; data rows counted from 1); Lemma 3.3 needs distinct inputs: use --dedupe");
        }
    }

    private sealed record Prefix(double[] Scalars, (double Weight, double Bias)[] Layers);

    private sealed record Candidate(double Alpha, double Theta, double[] Breakpoints, double[,] V, double Residual, double Amplification, double[] Sorted, Activation Sigma)
    {
        public string Name { get; init; } = "";
        public double[] A { get; init; } = [];
        public Prefix Prefix { get; init; } = new([], []);
        public int[] Order { get; init; } = [];
        public double RelativeMinGap { get; init; }
        public double MinGap { get; init; }
        public double Range { get; init; }
        public double Magnitude { get; init; }
    }

    private static IEnumerable<(string Name, double[] A)> CandidateDirections(double[][] x, double[][] y)
    {
        int l = y[0].Length;
        // Least squares (ridge 1e−8·trace) of each target, and of Σ_j j·y_j (the class index of one-hot
        // targets): sorting by a fitted target makes neighbours alike, so few slopes are steep.
        var targets = Enumerable.Range(0, Math.Min(l, 10)).Select(j => y.Select(r => r[j]).ToArray()).ToList();
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
        var tc = tensor(t) - t.Average();
        var gram = xc.t().matmul(xc);
        double ridge = 1e-8 * Math.Max(gram.trace().item<double>(), 1e-300);
        var a = linalg.solve(gram + ridge * eye(x[0].Length), xc.t().matmul(tc));
        var values = a.data<double>().ToArray();
        return values.All(double.IsFinite) && values.Any(v => v != 0) ? values : null;
    }

    /// <summary>
    /// Corollary 3.4's first T − 1 layers: one unit each, σ(w·u + b), with (w, b) mapping the current
    /// scalars onto the window of σ that shrinks gaps least (measured over a few candidate windows).
    /// </summary>
    private static Prefix CarryThroughPrefix(double[] s, Activation sigma, int layers)
    {
        var layerMaps = new List<(double, double)>();
        var u = s;
        for (int k = 0; k < layers; k++)
        {
            double lo = u.Min(), hi = u.Max();
            double[]? bestU = null;
            (double, double) bestMap = (1, 0);
            double bestShrink = -1;
            foreach (var (from, to) in new[] { (0.1, 1.1), (1.0, 3.0), (5.0, 15.0) })
            {
                double w = hi > lo ? (to - from) / (hi - lo) : 1.0;
                double b = from - w * lo;
                var next = u.Select(v => sigma.Value(w * v + b)).ToArray();
                // Worst relative gap preservation: min over neighbours of (gap_out/range_out)/(gap_in/range_in).
                var order = Enumerable.Range(0, u.Length).OrderBy(i => u[i]).ToArray();
                double rangeOut = next.Max() - next.Min(), rangeIn = hi - lo;
                double shrink = double.PositiveInfinity;
                for (int i = 1; i < order.Length; i++)
                {
                    double gin = u[order[i]] - u[order[i - 1]], gout = next[order[i]] - next[order[i - 1]];
                    shrink = Math.Min(shrink, gout / rangeOut / (gin / rangeIn));
                }
                if (shrink > bestShrink)
                {
                    bestShrink = shrink;
                    bestU = next;
                    bestMap = (w, b);
                }
            }
            layerMaps.Add(bestMap);
            u = bestU!;
        }
        return new Prefix(u, layerMaps.ToArray());
    }

    private static Candidate? Solve(double[] u, double[][] ySorted, double alpha, double theta, Activation sigma, double minGap)
    {
        int d = u.Length, l = ySorted[0].Length;
        var c = new double[d];
        double firstGap = d > 1 ? u[1] - u[0] : 1.0;
        c[0] = u[0] - Math.Max(firstGap, minGap);
        for (int k = 1; k < d; k++)
        {
            c[k] = u[k - 1] + theta * (u[k] - u[k - 1]);
        }
        using var scope = NewDisposeScope();
        var a = TriangularMatrix(u, c, alpha, sigma);
        // A diagonal entry below 1e−12 of the largest one (smooLU deep in its flat e^{−1/x} region) makes a
        // usable residual but a useless point: κ(A) of 1e80 and more. Such scales are not candidates.
        var diagonal = a.diagonal().abs();
        double diag = diagonal.min().item<double>();
        if (!(diag > 1e-12 * diagonal.max().item<double>()))
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
    private static Tensor TriangularMatrix(double[] u, double[] c, double alpha, Activation sigma)
    {
        using var scope = NewDisposeScope();
        var ut = tensor(u).unsqueeze(1).mul(alpha);
        var bias = tensor(c).mul(-alpha).unsqueeze(0);
        return sigma.Apply(ut + bias).tril().MoveToOuterDisposeScope();
    }

    private static double TriangularCondition(Candidate c)
    {
        using var scope = NewDisposeScope();
        var a = TriangularMatrix(c.Sorted, c.Breakpoints, c.Alpha, c.Sigma);
        var inverse = linalg.solve_triangular(a, eye(a.shape[0]), upper: false);
        double norm = a.abs().sum([0L]).max().item<double>();
        double inverseNorm = inverse.abs().sum([0L]).max().item<double>();
        return norm * inverseNorm;
    }

    private static double[] Assemble(Mlp mlp, Candidate best)
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
            var first = layers[0];
            var (w0, b0) = best.Prefix.Layers[0];
            for (int j = 0; j < first.In; j++)
            {
                p[first.WeightOffset + j] = w0 * best.A[j];
            }
            p[first.BiasOffset] = b0;
            for (int t = 1; t < T - 1; t++)
            {
                var (w, b) = best.Prefix.Layers[t];
                p[layers[t].WeightOffset] = w;
                p[layers[t].BiasOffset] = b;
            }
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

    private static void OutputLayerStep(Mlp mlp, NetworkModel model, Dataset data, int[] order)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        int d = data.Count, l = data.OutputDim;
        var output = mlp.Layers[^1];
        // The last hidden layer's activations only (not JacobianFactors, whose δ of the first layer is d × ℓ × h).
        var hiddenOut = mlp.LayerInput(model.Parameters, data.InputsTensor(), mlp.Layers.Count - 1);
        var index = tensor(order.Select(i => (long)i).ToArray(), dtype: int64);
        var phi = hiddenOut.index_select(0, index).narrow(1, 0, d).tril();
        var residual = (model.Forward(data.InputsTensor()) - data.TargetsTensor()).index_select(0, index);
        var delta = linalg.solve_triangular(phi, residual, upper: false);  // d × ℓ
        var p = model.Parameters.detach().clone();
        var w = p.narrow(0, output.WeightOffset, (long)output.Out * output.In).view(output.Out, output.In);
        w.narrow(1, 0, d).sub_(delta.t());
        ParameterVector.Set(model, p);
    }

    private static double MaxResidual(ResidualMap map)
    {
        using var scope = NewDisposeScope();
        return map.Residuals().abs().max().item<double>();
    }

    private static double[] Project(double[][] x, double[] a) => x.Select(r => r.Select((v, j) => v * a[j]).Sum()).ToArray();

    private static double[][] Rows(Dataset data) => Enumerable.Range(0, data.Count).Select(data.InputRow).ToArray();
}
