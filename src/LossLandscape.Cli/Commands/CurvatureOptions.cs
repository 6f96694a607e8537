using System.CommandLine;
using System.Globalization;
using LossLandscape.Curvature;
using LossLandscape.Geometry;

namespace LossLandscape.Cli.Commands;

/// <summary>Which curvature operator <c>spectrum</c> and <c>trace</c> work on.</summary>
internal enum CurvatureOperator
{
    /// <summary>∇²L by Hessian-vector products (double backward).</summary>
    Hessian,

    /// <summary>The Gauss-Newton matrix 2JᵀJ (for the squared loss).</summary>
    GaussNewton,
}

/// <summary>The options <c>spectrum</c> and <c>trace</c> share, and their interpretation.</summary>
internal static class CurvatureOptions
{
    /// <summary><c>--operator hessian|ggn</c>.</summary>
    public static Option<string> Operator() => new("--operator")
    {
        Description = "hessian (∇²L by Hessian-vector products) | ggn (the Gauss-Newton matrix 2JᵀJ)",
        DefaultValueFactory = _ => "hessian",
    };

    /// <summary><c>--batch-size B</c>.</summary>
    public static Option<int?> BatchSize() => new("--batch-size")
    {
        Description = "rows per batch of each operator application (default all; the result does not depend on it)",
    };

    /// <summary><c>--budget-gb G</c>.</summary>
    public static Option<double> Budget() => new("--budget-gb")
    {
        Description = "memory budget of dense matrices and Lanczos bases, in GB (default 1 GiB)",
        DefaultValueFactory = _ => LinearOperator.DefaultDenseBudgetBytes / 1e9,
    };

    /// <summary>Parses <c>--operator</c>.</summary>
    public static CurvatureOperator ParseOperator(string text) => text switch
    {
        "hessian" => CurvatureOperator.Hessian,
        "ggn" => CurvatureOperator.GaussNewton,
        _ => throw new UsageException($"--operator: '{text}' is not one of hessian, ggn"),
    };

    /// <summary>The budget in bytes; refuses a budget that is not positive.</summary>
    public static long BudgetBytes(double gigabytes)
    {
        if (!(gigabytes > 0) || double.IsInfinity(gigabytes))
        {
            throw new UsageException(string.Create(CultureInfo.InvariantCulture, $"--budget-gb: {gigabytes} is not a positive number of gigabytes"));
        }
        return (long)Math.Min(gigabytes * 1e9, long.MaxValue / 2.0);
    }

    /// <summary>The operator on <paramref name="map"/>.</summary>
    public static LinearOperator Build(ResidualMap map, CurvatureOperator kind) => kind switch
    {
        CurvatureOperator.GaussNewton => new GaussNewtonOperator(map),
        _ => new HessianOperator(map),
    };

    /// <summary>How the operator is named in output.</summary>
    public static string Name(CurvatureOperator kind) => kind == CurvatureOperator.GaussNewton ? "gauss-newton 2JᵀJ" : "hessian ∇²L";

    /// <summary>
    /// Runs <paramref name="work"/>, turning the library's refusal over the memory budget (an
    /// <see cref="InvalidOperationException"/> whose message names the alternatives) into bad input.
    /// </summary>
    public static T Guard<T>(Func<T> work)
    {
        try
        {
            return work();
        }
        catch (InvalidOperationException e) when (e.Message.Contains("memory budget", StringComparison.Ordinal))
        {
            throw new UsageException(e.Message);
        }
    }
}
