using System.CommandLine;
using LossLandscape.Cli.Commands;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Models;

namespace LossLandscape.Cli;

/// <summary>
/// The <c>landscape</c> command line: parses, calls the library and renders. The process's entry point
/// (<c>Program</c>) is one call to <see cref="Run"/>.
/// </summary>
/// <remarks>
/// <para>Exit codes:</para>
/// <list type="table">
/// <item><term>0</term><description>success (<see cref="Success"/>).</description></item>
/// <item><term>1</term><description>the command ran, but its claim does not hold: a verify check failed, a
/// construction missed its goal, a walk's retraction did not converge (<see cref="Failure"/>).</description></item>
/// <item><term>2</term><description>bad input, always with one line <c>landscape: error: …</c> naming the problem
/// (<see cref="BadInput"/>): a malformed command line or option value (<see cref="UsageException"/>), unusable data
/// (<see cref="DataFormatException"/>) or model file (<see cref="ModelFormatException"/>), an input file or directory
/// that does not exist, a request the library refuses as bad input (<see cref="LandscapeInputException"/>: the
/// construction asked for h &lt; d, duplicate inputs, an activation that is not rectified), or a memory budget
/// the work would exceed.</description></item>
/// <item><term>70</term><description>any other exception: a bug (<see cref="InternalError"/>, EX_SOFTWARE of
/// BSD's sysexits.h). The line says so; <c>LANDSCAPE_DEBUG=1</c> prints the stack trace.</description></item>
/// <item><term>130</term><description>train interrupted by Ctrl-C, the best point written (<see cref="TrainCommand.Interrupted"/>).</description></item>
/// </list>
/// </remarks>
public static class LandscapeApp
{
    /// <summary>Exit code for success.</summary>
    public const int Success = 0;

    /// <summary>Exit code when the command ran but its claim does not hold (a failed check, a missed goal).</summary>
    public const int Failure = 1;

    /// <summary>Exit code for bad input.</summary>
    public const int BadInput = 2;

    /// <summary>Exit code for an internal error, a bug: EX_SOFTWARE (70) of sysexits.h.</summary>
    public const int InternalError = 70;

    /// <summary>The environment variable that makes errors print their stack trace (<c>LANDSCAPE_DEBUG=1</c>).</summary>
    internal const string DebugVariable = "LANDSCAPE_DEBUG";

    /// <summary>Runs the command line in-process, writing to the given streams; returns the exit code.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var context = new CliContext(stdout, stderr, args);
        var root = new RootCommand("landscape: the geometry of neural-network loss landscapes (Cooper, \"The loss landscape of overparameterized neural networks\")");
        root.Subcommands.Add(VerifyCommand.Create(context));
        root.Subcommands.Add(InfoCommand.Create(context));
        root.Subcommands.Add(InitCommand.Create(context));
        root.Subcommands.Add(EvaluateCommand.Create(context));
        root.Subcommands.Add(ConstructCommand.Create(context));
        root.Subcommands.Add(CertifyCommand.Create(context));
        root.Subcommands.Add(WalkCommand.Create(context));
        root.Subcommands.Add(ConnectCommand.Create(context));
        root.Subcommands.Add(PermuteCommand.Create(context));
        root.Subcommands.Add(SliceCommand.Create(context));
        root.Subcommands.Add(ReportCommand.Create(context));
        root.Subcommands.Add(SpectrumCommand.Create(context));
        root.Subcommands.Add(TraceCommand.Create(context));
        root.Subcommands.Add(TrainCommand.Create(context));
        root.Subcommands.Add(ExperimentCommand.Create(context));
        root.Subcommands.Add(ClusterInitCommand.Create(context));
        root.Subcommands.Add(WorkerCommand.Create(context));

        ParseResult parsed = root.Parse(args.Length == 0 ? ["--help"] : args);
        if (parsed.Errors.Count > 0)
        {
            stderr.WriteLine($"landscape: error: {parsed.Errors[0].Message.ReplaceLineEndings(" ")} (see landscape --help)");
            return BadInput;
        }
        var config = new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false };
        try
        {
            return parsed.Invoke(config);
        }
        catch (Exception e)
        {
            return Report(e, stderr);
        }
    }

    /// <summary>Maps an exception to a one-line message and an exit code; never prints a stack trace unless <c>LANDSCAPE_DEBUG=1</c>.</summary>
    internal static int Report(Exception e, TextWriter stderr) => Report(e, stderr, Environment.GetEnvironmentVariable(DebugVariable) == "1");

    /// <summary>Maps an exception to a one-line message and an exit code (see the class remarks), with the trace first if <paramref name="debug"/>.</summary>
    internal static int Report(Exception e, TextWriter stderr, bool debug)
    {
        ArgumentNullException.ThrowIfNull(e);
        ArgumentNullException.ThrowIfNull(stderr);
        while (e is AggregateException { InnerException: { } inner })
        {
            e = inner;
        }
        string line = e.Message.ReplaceLineEndings(" ");
        if (debug)
        {
            stderr.WriteLine(e.ToString());
        }
        if (e is Cluster.ShardUnavailableException)
        {
            // A shard that never came back: the run fails (exit 1), naming the shard, rather than sum what the others sent.
            stderr.WriteLine($"landscape: error: {line}");
            return Failure;
        }
        if (IsBadInput(e))
        {
            stderr.WriteLine($"landscape: error: {line}");
            return BadInput;
        }
        stderr.WriteLine($"landscape: internal error ({e.GetType().Name}): {line} — this is a bug; {DebugVariable}=1 shows the trace");
        return InternalError;
    }

    /// <summary>
    /// Whether <paramref name="e"/> is bad input (exit 2) rather than a bug: only the exception types that say so.
    /// A bare <see cref="ArgumentException"/> or <see cref="InvalidOperationException"/> is a bug, since the library
    /// throws <see cref="LandscapeInputException"/> (an <see cref="ArgumentException"/>) when it refuses input.
    /// </summary>
    internal static bool IsBadInput(Exception e) =>
        e is UsageException or DataFormatException or ModelFormatException or LandscapeInputException or MemoryBudgetExceededException or FileNotFoundException or DirectoryNotFoundException;

    /// <summary>Prepares the engine; every command calls it first.</summary>
    internal static void Initialize() => TorchRuntime.EnsureInitialized();
}
