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
/// construction asked for h &lt; d, duplicate inputs, an activation that is not rectified), a memory budget
/// the work would exceed (checked before allocating), a point whose loss, gradient or estimate is not finite
/// (<see cref="NonFinite"/>), libtorch refusing a non-finite matrix, running out of memory, or a file that cannot be
/// read or written (<see cref="IOException"/>, <see cref="UnauthorizedAccessException"/>).</description></item>
/// <item><term>70</term><description>any other exception: a bug (<see cref="InternalError"/>, EX_SOFTWARE of
/// BSD's sysexits.h). The line says so; <c>LANDSCAPE_DEBUG=1</c> prints the stack trace.</description></item>
/// <item><term>130</term><description>interrupted by SIGINT (Ctrl-C): train and walk write the best point
/// (<see cref="TrainCommand.Interrupted"/>), connect and experiment what finished, other commands write nothing (<see cref="SignalCancellation"/>).</description></item>
/// <item><term>143</term><description>interrupted by SIGTERM, the same as 130.</description></item>
/// </list>
/// </remarks>
public static partial class LandscapeApp
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
        root.Subcommands.Add(ExportCommand.Create(context));
        root.Subcommands.Add(SliceCommand.Create(context));
        root.Subcommands.Add(ReportCommand.Create(context));
        root.Subcommands.Add(SpectrumCommand.Create(context));
        root.Subcommands.Add(TraceCommand.Create(context));
        root.Subcommands.Add(ApproxCommand.Create(context));
        root.Subcommands.Add(TrainCommand.Create(context));
        root.Subcommands.Add(ExperimentCommand.Create(context));
        root.Subcommands.Add(ClusterInitCommand.Create(context));
        root.Subcommands.Add(WorkerCommand.Create(context));

        try
        {
            ParseResult parsed = root.Parse(args.Length == 0 ? ["--help"] : args);
            if (parsed.Errors.Count > 0)
            {
                string message = args.Length > 0 && !args[0].StartsWith('-') && !root.Subcommands.Any(c => c.Name == args[0])
                    ? $"unknown command '{Shorten(args[0])}'; the commands are: {string.Join(", ", root.Subcommands.Select(c => c.Name))}"
                    : $"{parsed.Errors[0].Message.ReplaceLineEndings(" ")} (see landscape --help)";
                WriteLineSafely(stderr, $"landscape: error: {Shorten(message, MaxMessageLength)}");
                return BadInput;
            }
            var config = new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false };
            return parsed.Invoke(config);
        }
        catch (Exception e)
        {
            return Report(e, stderr);
        }
    }

    /// <summary>
    /// The longest error line printed, in characters: room for a message that lists the columns of a digits-sized table,
    /// while a 10 MB cell, path or option value is never echoed whole. Chosen, not derived.
    /// </summary>
    internal const int MaxMessageLength = 2000;

    /// <summary>The most characters of a user's value (a cell, a command name) quoted in a message; about one terminal line.</summary>
    internal const int MaxQuotedLength = 80;

    /// <summary><paramref name="text"/> cut to <paramref name="max"/> characters, with "…" and the full length when cut.</summary>
    internal static string Shorten(string text, int max = MaxQuotedLength) =>
        text.Length <= max ? text : string.Concat(text.AsSpan(0, max), $"… ({text.Length} characters)");

    /// <summary>Writes one line to <paramref name="writer"/>, swallowing any failure (a closed stderr, a full disk): the error printer cannot throw.</summary>
    internal static void WriteLineSafely(TextWriter writer, string line)
    {
        try
        {
            writer.WriteLine(line);
            writer.Flush();
        }
        catch (Exception)
        {
            // Nowhere left to report to: the exit code carries the outcome.
        }
    }

    /// <summary>Maps an exception to a one-line message and an exit code; never prints a stack trace unless <c>LANDSCAPE_DEBUG=1</c>.</summary>
    internal static int Report(Exception e, TextWriter stderr) => Report(e, stderr, Environment.GetEnvironmentVariable(DebugVariable) == "1");

    /// <summary>Maps an exception to a one-line message and an exit code (see the class remarks), with the trace first if <paramref name="debug"/>.</summary>
    internal static int Report(Exception e, TextWriter stderr, bool debug)
    {
        ArgumentNullException.ThrowIfNull(e);
        ArgumentNullException.ThrowIfNull(stderr);
        int code = InternalError;
        string text;
        try
        {
            while (e is AggregateException { InnerException: { } inner })
            {
                e = inner;
            }
            if (debug)
            {
                WriteLineSafely(stderr, e.ToString());
            }
            string line = Shorten(OneLine(e), MaxMessageLength);
            if (e is Cluster.ShardUnavailableException)
            {
                // A shard that never came back: the run fails (exit 1), naming the shard, rather than sum what the others sent.
                code = Failure;
                text = $"landscape: error: {line}";
            }
            else if (IsBadInput(e))
            {
                code = BadInput;
                text = $"landscape: error: {line}";
            }
            else if (IsNonFiniteInLinearAlgebra(e))
            {
                code = BadInput;
                text = $"landscape: error: a matrix of the computation is not finite (float64 overflowed at this point: check the parameters, the input scale and the loss exponent): {line}";
            }
            else if (e is OutOfMemoryException or InsufficientMemoryException || IsLibTorchOutOfMemory(e))
            {
                code = BadInput;
                text = "landscape: error: out of memory: the problem does not fit this machine's memory or address-space limit; use smaller widths, fewer rows or a smaller --grid";
            }
            else
            {
                text = $"landscape: internal error ({e.GetType().Name}): {line} — this is a bug; {DebugVariable}=1 shows the trace";
            }
        }
        catch (Exception)
        {
            text = "landscape: internal error (the error message could not be formed) — this is a bug";
        }
        WriteLineSafely(stderr, text);
        return code;
    }

    /// <summary>
    /// The message of <paramref name="e"/> as one line; for an exception from libtorch (TorchSharp's
    /// <see cref="System.Runtime.InteropServices.ExternalException"/>), only its first sentence, before the C++
    /// "Exception raised from … frame #N" trace, which never reaches the user.
    /// </summary>
    internal static string OneLine(Exception e)
    {
        string message = e.Message;
        if (e is System.Runtime.InteropServices.ExternalException)
        {
            foreach (var marker in LibTorchTraceMarkers)
            {
                int at = message.IndexOf(marker, StringComparison.Ordinal);
                if (at >= 0)
                {
                    message = message[..at];
                }
            }
        }
        // A quoted user value ('…': a cell, a name, a path) is cut to MaxQuotedLength characters: a 10 MB cell is never echoed whole.
        return LongQuote().Replace(message.ReplaceLineEndings(" ").Trim(), m => $"'{Shorten(m.Groups[1].Value)}'");
    }

    [System.Text.RegularExpressions.GeneratedRegex("'([^']{81,})'")]
    private static partial System.Text.RegularExpressions.Regex LongQuote();

    /// <summary>Where libtorch's C++ backtrace starts in the message of its exceptions (c10::Error::what()).</summary>
    private static readonly string[] LibTorchTraceMarkers = ["Exception raised from", "frame #"];

    /// <summary>Whether <paramref name="e"/> is libtorch's allocator failing (c10's "DefaultCPUAllocator: can't allocate memory").</summary>
    internal static bool IsLibTorchOutOfMemory(Exception e) =>
        e is System.Runtime.InteropServices.ExternalException && e.Message.Contains("can't allocate memory", StringComparison.OrdinalIgnoreCase);

    /// <summary>Whether <paramref name="e"/> is libtorch refusing a matrix with NaN or ±∞ entries (the input of the factorization overflowed).</summary>
    internal static bool IsNonFiniteInLinearAlgebra(Exception e) =>
        e is System.Runtime.InteropServices.ExternalException && e.Message.Contains("non-finite", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Whether <paramref name="e"/> is bad input (exit 2) rather than a bug: only the exception types that say so.
    /// A bare <see cref="ArgumentException"/> or <see cref="InvalidOperationException"/> is a bug, since the library
    /// throws <see cref="LandscapeInputException"/> (an <see cref="ArgumentException"/>) when it refuses input.
    /// </summary>
    internal static bool IsBadInput(Exception e) =>
        e is UsageException or DataFormatException or ModelFormatException or LandscapeInputException or MemoryBudgetExceededException
            or FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException or IOException;

    /// <summary>Prepares the engine; every command calls it first.</summary>
    internal static void Initialize() => TorchRuntime.EnsureInitialized();
}
