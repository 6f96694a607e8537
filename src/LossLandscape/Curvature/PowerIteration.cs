using LossLandscape.Operators;
using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Curvature;

/// <summary>When <see cref="PowerIteration"/> stops iterating on one eigenpair.</summary>
public enum PowerStoppingRule
{
    /// <summary>PyHessian's rule: |λ_t − λ_{t−1}| / (|λ_{t−1}| + 10⁻⁶) &lt; tol.</summary>
    EigenvalueChange,

    /// <summary>The rule of <see cref="Lanczos"/>: ‖Av − λv‖ ≤ tol·|λ₁|, λ₁ the first eigenvalue found.</summary>
    Residual,
}

/// <summary>Options of <see cref="PowerIteration.Eigenpairs"/>; the defaults are PyHessian's <c>hessian.eigenvalues</c>.</summary>
/// <param name="K">How many eigenpairs (PyHessian's <c>top_n</c>, default 1).</param>
/// <param name="MaxIterations">The most iterations per eigenpair (PyHessian's <c>maxIter</c>, default 100).</param>
/// <param name="Tolerance">Tolerance of the stopping rule (PyHessian's <c>tol</c>, default 1e−3).</param>
/// <param name="Rule">The stopping rule; default PyHessian's <see cref="PowerStoppingRule.EigenvalueChange"/>.</param>
/// <param name="Seed">Seed of the Gaussian start vectors; default 0.</param>
public sealed record PowerIterationOptions(
    int K = 1,
    int MaxIterations = 100,
    double Tolerance = 1e-3,
    PowerStoppingRule Rule = PowerStoppingRule.EigenvalueChange,
    int Seed = 0);

/// <summary>The result of <see cref="PowerIteration.Eigenpairs"/>.</summary>
/// <param name="Eigenvalues">The Rayleigh quotients λ = vᵀAv, in the order found (roughly decreasing |λ|).</param>
/// <param name="Eigenvectors">The unit vectors v, as the columns of an n × k tensor; the caller owns it.</param>
/// <param name="ResidualNorms">‖Av − λv‖ of each pair (free: Av is the last product of its iteration).</param>
/// <param name="IterationsPerPair">Iterations (applications) spent on each pair.</param>
/// <param name="Applications">Operator applications in all (Hessian-vector products).</param>
/// <param name="Status">Converged when every pair met the stopping rule, Breakdown when the operator produced NaN (the pairs found before it are kept), else StoppedWithoutConvergence.</param>
public sealed record PowerIterationResult(
    IReadOnlyList<double> Eigenvalues,
    Tensor Eigenvectors,
    IReadOnlyList<double> ResidualNorms,
    IReadOnlyList<int> IterationsPerPair,
    long Applications,
    SolverStatus Status);

/// <summary>
/// Power iteration with deflation, PyHessian's algorithm for the top eigenvalues: for each pair, from a Gaussian
/// start, repeat v ← v orthonormalised against the pairs found, λ = vᵀAv, v ← Av/‖Av‖. Kept for comparison with
/// <see cref="Lanczos"/>, which needs far fewer applications for the same accuracy.
/// </summary>
/// <remarks>
/// Yao, Gholami, Keutzer &amp; Mahoney 2020, "PyHessian: Neural networks through the lens of the Hessian", Algorithm 1
/// (and <c>pyhessian/hessian.py</c>, <c>eigenvalues</c>). It converges to the eigenvalues of largest magnitude, at the
/// rate |λ_{i+1}/λ_i| per step.
/// </remarks>
public static class PowerIteration
{
    /// <summary>The k eigenpairs of largest magnitude of the symmetric operator <paramref name="op"/>, one after the other; the token of <paramref name="limits"/> is checked before each iteration.</summary>
    public static PowerIterationResult Eigenpairs(LinearOperator op, PowerIterationOptions? options = null, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(op);
        options ??= new PowerIterationOptions();
        limits ??= RunLimits.Default;
        Lanczos.RequireSymmetric(op);
        if (options.K < 1 || options.MaxIterations < 1 || !(options.Tolerance >= 0))
        {
            throw new LandscapeInputException(FormattableString.Invariant($"power iteration needs K ≥ 1, MaxIterations ≥ 1 and Tolerance ≥ 0, got {options}"), nameof(options));
        }
        long n = op.Columns;
        int k = (int)Math.Min(options.K, n);
        long startApplications = op.Applications;
        using var scope = NewDisposeScope();
        var rng = new Random(options.Seed);
        var found = zeros(n, k, dtype: op.DType, device: op.Device);
        var values = new List<double>();
        var residuals = new List<double>();
        var iterations = new List<int>();
        bool allConverged = true;
        bool breakdown = false;
        for (int pair = 0; pair < k && !breakdown; pair++)
        {
            // v is owned here, outside the per-step scopes, and replaced (old one disposed) at each step.
            var v = tensor(Probes.Gaussian(rng, n), dtype: op.DType, device: op.Device).DetachFromDisposeScope();
            double? eigenvalue = null;
            double residual = double.NaN;
            bool converged = false;
            int iteration = 0;
            var previous = found.narrow(1, 0, pair);
            while (iteration < options.MaxIterations)
            {
                limits.ThrowIfCancellationRequested();
                using var stepScope = NewDisposeScope();
                iteration++;
                // Deflation: x = (I − VVᵀ)v/‖·‖ against the pairs found so far.
                var x = pair > 0 ? v - previous.mv(previous.t().mv(v)) : v.alias();
                x = x / x.Norm2();
                var ax = op.Apply(x);
                double lambda = ax.dot(x).item<double>();
                residual = (ax - x.Times(lambda)).Norm2().item<double>();
                double norm = ax.Norm2().item<double>();
                if (ConvergenceTest.IsBreakdown(residual, lambda))
                {
                    // The operator produced NaN: nothing after this step means anything.
                    breakdown = true;
                    eigenvalue = lambda;
                    break;
                }
                converged = options.Rule == PowerStoppingRule.Residual
                    ? ConvergenceTest.IsMet(residual, pair == 0 ? lambda : values[0], options.Tolerance)
                    : eigenvalue is double last && ConvergenceTest.IsMet(Math.Abs(last - lambda), Math.Abs(last) + 1e-6, options.Tolerance);
                converged |= norm == 0; // Ax = 0: x is an exact eigenvector of 0.
                eigenvalue = lambda;
                var next = (converged ? x : ax.Over(norm)).DetachFromDisposeScope();
                v.Dispose();
                v = next;
                if (converged)
                {
                    break;
                }
            }
            found.select(1, pair).copy_(v / v.Norm2());
            v.Dispose();
            allConverged &= converged;
            values.Add(eigenvalue ?? double.NaN);
            residuals.Add(residual);
            iterations.Add(iteration);
        }
        return new PowerIterationResult(values, found.MoveToOuterDisposeScope(), residuals, iterations, op.Applications - startApplications,
            breakdown ? SolverStatus.Breakdown : allConverged ? SolverStatus.Converged : SolverStatus.StoppedWithoutConvergence);
    }
}
