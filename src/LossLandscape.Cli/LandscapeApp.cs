using System.CommandLine;
using LossLandscape.Cli.Commands;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Models;

namespace LossLandscape.Cli;

/// <summary>
/// The <c>landscape</c> command line: parses, calls the library and renders. Exit codes: 0 success,
/// 1 a check failed (verify) or an internal error, 2 bad input (always with a one-line message).
/// </summary>
public static class LandscapeApp
{
    /// <summary>Exit code for success.</summary>
    public const int Success = 0;

    /// <summary>Exit code when a verified claim fails, or on an internal error.</summary>
    public const int Failure = 1;

    /// <summary>Exit code for bad input.</summary>
    public const int BadInput = 2;

    /// <summary>Runs the command line in-process, writing to the given streams.</summary>
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
        root.Subcommands.Add(SliceCommand.Create(context));
        root.Subcommands.Add(ReportCommand.Create(context));
        root.Subcommands.Add(SpectrumCommand.Create(context));
        root.Subcommands.Add(TraceCommand.Create(context));
        root.Subcommands.Add(TrainCommand.Create(context));
        root.Subcommands.Add(ExperimentCommand.Create(context));

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

    /// <summary>Maps an exception to a one-line message and an exit code; never prints a stack trace.</summary>
    public static int Report(Exception e, TextWriter stderr)
    {
        while (e is AggregateException { InnerException: { } inner })
        {
            e = inner;
        }
        bool bad = e is UsageException or DataFormatException or ModelFormatException or MemoryBudgetExceededException or ArgumentException or FileNotFoundException or DirectoryNotFoundException;
        string line = e.Message.ReplaceLineEndings(" ");
        if (Environment.GetEnvironmentVariable("LANDSCAPE_DEBUG") == "1")
        {
            stderr.WriteLine(e.ToString());
        }
        stderr.WriteLine(bad ? $"landscape: error: {line}" : $"landscape: internal error ({e.GetType().Name}): {line}");
        return bad ? BadInput : Failure;
    }

    /// <summary>Prepares the engine; every command calls it first.</summary>
    internal static void Initialize() => TorchRuntime.EnsureInitialized();
}
