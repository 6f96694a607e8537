using LossLandscape.Problem;

namespace LossLandscape.Operators;

/// <summary>Which curvature matrix of the loss a spectrum or a trace is of.</summary>
public enum CurvatureKind
{
    /// <summary>∇²L by Hessian-vector products (double backward, <see cref="HessianOperator"/>).</summary>
    Hessian,

    /// <summary>The Gauss–Newton matrix G = JᵀΛJ, for the squared loss 2JᵀJ (<see cref="GaussNewtonOperator"/>).</summary>
    GaussNewton,
}

/// <summary>The operator of each <see cref="CurvatureKind"/>, and its name in output: the one place the choice is made.</summary>
public static class CurvatureOperators
{
    /// <summary>The operator of <paramref name="kind"/> on <paramref name="map"/>'s loss at the model's current point.</summary>
    public static LinearOperator Create(IResidualProblem map, CurvatureKind kind)
    {
        ArgumentNullException.ThrowIfNull(map);
        return kind switch
        {
            CurvatureKind.Hessian => new HessianOperator(map),
            CurvatureKind.GaussNewton => new GaussNewtonOperator(map),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown curvature kind"),
        };
    }

    /// <summary>How <paramref name="kind"/> is named in tables and JSON: "hessian ∇²L" or "gauss-newton 2JᵀJ".</summary>
    public static string Name(CurvatureKind kind) => kind == CurvatureKind.GaussNewton ? "gauss-newton 2JᵀJ" : "hessian ∇²L";
}
