using LossLandscape.Operators;
using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Curvature;

/// <summary>The exact spectrum of a small symmetric operator.</summary>
/// <param name="Eigenvalues">All n eigenvalues, ascending.</param>
/// <param name="Eigenvectors">The orthonormal eigenvectors as columns (n × n), or null when not asked for; the caller owns it.</param>
/// <param name="Asymmetry">max|A − Aᵀ| / max|A| of the dense matrix before it was symmetrised: the rounding of its applications.</param>
/// <param name="Applications">Operator applications used to build the matrix (n).</param>
public sealed record DenseSpectrumResult(IReadOnlyList<double> Eigenvalues, Tensor? Eigenvectors, double Asymmetry, long Applications)
{
    /// <summary>The <paramref name="k"/> eigenvalues at <paramref name="which"/> end, in the order <see cref="SpectrumEnd"/> describes.</summary>
    public IReadOnlyList<double> Select(SpectrumEnd which, int k) =>
        SpectrumOrder.Select(Eigenvalues, which, k).Select(i => Eigenvalues[i]).ToArray();
}

/// <summary>
/// The dense exact spectrum: A built column by column (n applications), symmetrised as (A + Aᵀ)/2, and decomposed by
/// LAPACK's symmetric eigensolver (<c>torch.linalg.eigh</c>). The reference the iterative methods are checked against;
/// refused above the memory budget, counting every n × n matrix live at once (<see cref="LiveMatrices"/>).
/// </summary>
public static class DenseSpectrum
{
    /// <summary>
    /// The n × n float64 matrices live at once: A, the temporary A − Aᵀ (then (A + Aᵀ)/2), and eigh's working copy; one more
    /// for the eigenvectors.
    /// </summary>
    public static int LiveMatrices(bool eigenvectors) => eigenvectors ? 4 : 3;

    /// <summary>Every eigenvalue (and optionally eigenvector) of the symmetric operator <paramref name="op"/>.</summary>
    /// <param name="op">A symmetric operator.</param>
    /// <param name="eigenvectors">Whether to return the eigenvectors too.</param>
    /// <param name="limits">
    /// The memory budget of all the n × n matrices live at once; the token, checked while A is built; the stages reported:
    /// the columns of A as they are built (to 90 %), then "eigenvalues".
    /// </param>
    /// <exception cref="MemoryBudgetExceededException">The dense matrices would exceed the memory budget; the message names the alternatives.</exception>
    public static DenseSpectrumResult Compute(LinearOperator op, bool eigenvectors = false, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(op);
        Lanczos.RequireSymmetric(op);
        limits ??= RunLimits.Default;
        long n = op.Columns;
        limits.Require($"the dense spectrum of a {n} × {n} operator ({LiveMatrices(eigenvectors)} n × n matrices: A, its symmetrised copy, eigh's workspace{(eigenvectors ? ", the eigenvectors" : "")})",
            SaturatingProduct(LiveMatrices(eigenvectors), MemoryBudget.DenseMatrixBytes(n, n)), LinearOperator.MatrixFreeAlternatives);
        long startApplications = op.Applications;
        using var scope = NewDisposeScope();
        var a = op.ToDense(limits: limits.Within(0, 0.9, "dense matrix")).to_type(ScalarType.Float64);
        double scale = Math.Max(a.abs().max().item<double>(), double.Epsilon);
        double asymmetry;
        using (var temporary = NewDisposeScope())
        {
            asymmetry = (a - a.t()).abs().max().item<double>() / scale;
        }
        var symmetric = a.Plus(a.t()).OverInPlace(2); // in place: A and (A + Aᵀ)/2 are the only n × n matrices live here
        limits.Checkpoint("eigenvalues", 0.9);
        double[] values;
        Tensor? vectors = null;
        if (eigenvectors)
        {
            var (w, v) = linalg.eigh(symmetric);
            values = w.data<double>().ToArray();
            vectors = v.MoveToOuterDisposeScope();
        }
        else
        {
            values = linalg.eigvalsh(symmetric).data<double>().ToArray();
        }
        limits.Report("eigenvalues", 1);
        return new DenseSpectrumResult(values, vectors, asymmetry, op.Applications - startApplications);
    }

    private static long SaturatingProduct(int count, long bytes) => bytes > long.MaxValue / count ? long.MaxValue : count * bytes;
}
