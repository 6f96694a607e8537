using LossLandscape.Operators;
using System.CommandLine;
using System.Globalization;
using LossLandscape.Curvature;
using LossLandscape.Engine;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>The options <c>spectrum</c> and <c>trace</c> share, and how they are parsed (the choices they name live in the library).</summary>
internal static class CurvatureOptions
{
    /// <summary><c>--operator hessian|ggn</c>.</summary>
    public static Option<string> Operator() => new("--operator")
    {
        Description = "hessian (∇²L by Hessian-vector products) | ggn (the Gauss-Newton matrix 2JᵀJ)",
        DefaultValueFactory = _ => "hessian",
    };

    /// <summary><c>--per-layer</c> of <c>spectrum</c> and <c>trace</c>.</summary>
    public static Option<bool> PerLayer() => new("--per-layer")
    {
        Description = "each layer's diagonal block (its weights and bias) instead of the whole matrix: its top-k eigenvalues by Lanczos with residuals and its trace with a standard error, in one table",
    };

    /// <summary>The per-layer table of <c>spectrum --per-layer</c> and <c>trace --per-layer</c>, from the library's <see cref="PerLayerResult"/>.</summary>
    public static void RenderPerLayer(CliContext context, PerLayerResult result, string data)
    {
        string G(double v) => v.ToString("G5", CultureInfo.InvariantCulture);
        var table = new Table().Title(Markup.Escape($"{result.Operator} by layer ({data}; {result.Products} products, {result.Seconds.ToString("0.000", CultureInfo.InvariantCulture)} s)"))
            .AddColumns("layer", "parameters", "top eigenvalues (‖Av − λv‖)", "trace", "products");
        foreach (var layer in result.Layers)
        {
            var eigenvalues = layer.Eigenvalues.Select((v, i) => $"{G(v)} ({layer.Residuals[i].ToString("G2", CultureInfo.InvariantCulture)}){(layer.Converged[i] ? "" : " NOT CONVERGED")}");
            table.AddRow(new[]
            {
                layer.Layer, layer.Count.ToString(CultureInfo.InvariantCulture), string.Join(", ", eigenvalues),
                layer.TraceStandardError > 0 ? $"{G(layer.Trace)} ± {layer.TraceStandardError.ToString("G3", CultureInfo.InvariantCulture)}" : G(layer.Trace),
                layer.Products.ToString(CultureInfo.InvariantCulture),
            }.Select(Markup.Escape).ToArray());
        }
        context.Console.Write(table);
    }

    /// <summary><c>--against ggn|hessian</c>: the exact matrix an approximation is measured against.</summary>
    public static Option<string> Against() => new("--against")
    {
        Description = "ggn (the Gauss-Newton matrix, what KFAC, EKFAC and the GGN diagonal approximate) | hessian (∇²L)",
        DefaultValueFactory = _ => "ggn",
    };

    /// <summary>What <c>--batch-size B</c> (a shared option, <see cref="SharedOptions.BatchSize"/>) means for a command that sums over the data.</summary>
    public const string BatchSizeDescription = "rows per batch of every sum over the data (default: what --budget-gb holds; the results do not depend on it beyond summation order)";

    /// <summary>The name of the memory-budget option, which every memory refusal names as the way to raise the budget.</summary>
    public const string BudgetOptionName = "--budget-gb";

    /// <summary>The default of <c>--budget-gb</c>: the library's default budget (<see cref="RunLimits.Default"/>), in GB.</summary>
    public static double DefaultBudgetGigabytes => RunLimits.Default.MemoryBudgetBytes / 1e9;

    /// <summary><c>--budget-gb G</c> (every command with <see cref="SharedOptions.Budget"/>).</summary>
    public static Option<double> Budget() => new(BudgetOptionName)
    {
        Description = "memory budget of one operation (dense matrices, Krylov bases, networks, grids), in GB (default 2 GiB = 2.147 GB, the library's MemoryBudget.DefaultBytes)",
        DefaultValueFactory = _ => DefaultBudgetGigabytes,
    };

    /// <summary>Parses <c>--operator</c>.</summary>
    public static CurvatureKind ParseOperator(string text) => ParseMatrix(text, "--operator");

    /// <summary>Parses <c>--against</c>.</summary>
    public static CurvatureKind ParseAgainst(string text) => ParseMatrix(text, "--against");

    private static CurvatureKind ParseMatrix(string text, string option) => text switch
    {
        "hessian" => CurvatureKind.Hessian,
        "ggn" => CurvatureKind.GaussNewton,
        _ => throw new UsageException($"{option}: '{text}' is not one of hessian, ggn"),
    };

    /// <summary>The budget in bytes; refuses a budget that is not positive.</summary>
    public static long BudgetBytes(double gigabytes)
    {
        if (gigabytes == DefaultBudgetGigabytes)
        {
            return RunLimits.Default.MemoryBudgetBytes; // the default exactly, not its round trip through GB
        }
        // Below one byte (e.g. 1e-10 GB) the budget rounds to 0, which no operation can meet: refused here, as bad input.
        if (!(gigabytes > 0) || double.IsInfinity(gigabytes) || gigabytes * 1e9 < 1)
        {
            throw new UsageException(string.Create(CultureInfo.InvariantCulture, $"--budget-gb: {gigabytes} is not a positive number of gigabytes"));
        }
        return (long)Math.Min(gigabytes * 1e9, long.MaxValue / 2.0);
    }
}
