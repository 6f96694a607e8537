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
/// refused above the memory budget (<see cref="LinearOperator.ToDense"/>).
/// </summary>
public static class DenseSpectrum
{
    /// <summary>Every eigenvalue (and optionally eigenvector) of the symmetric operator <paramref name="op"/>.</summary>
    /// <exception cref="InvalidOperationException">The dense matrix would exceed the memory budget; the message names the alternatives.</exception>
    public static DenseSpectrumResult Compute(LinearOperator op, bool eigenvectors = false, long? budgetBytes = null)
    {
        ArgumentNullException.ThrowIfNull(op);
        Lanczos.RequireSymmetric(op);
        long startApplications = op.Applications;
        using var scope = NewDisposeScope();
        var a = op.ToDense(budgetBytes).to_type(ScalarType.Float64);
        double scale = Math.Max(a.abs().max().item<double>(), double.Epsilon);
        double asymmetry = (a - a.t()).abs().max().item<double>() / scale;
        var symmetric = (a + a.t()) / 2;
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
        return new DenseSpectrumResult(values, vectors, asymmetry, op.Applications - startApplications);
    }
}
