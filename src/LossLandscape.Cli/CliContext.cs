using LossLandscape.Engine;
using Spectre.Console;

namespace LossLandscape.Cli;

/// <summary>A bad command line or bad input: exit code 2 and a one-line message.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>Where a command writes: stdout for people (a Spectre console), stderr for errors.</summary>
internal sealed class CliContext
{
    /// <summary>Creates a context over two writers (the process's streams, or in-process test buffers).</summary>
    public CliContext(TextWriter stdout, TextWriter stderr, IReadOnlyList<string>? arguments = null)
    {
        Arguments = arguments ?? [];
        Out = stdout;
        Err = stderr;
        bool terminal = (ReferenceEquals(stdout, System.Console.Out) && !System.Console.IsOutputRedirected)
            || (ReferenceEquals(stdout, System.Console.Error) && !System.Console.IsErrorRedirected);
        Console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(stdout),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = terminal ? InteractionSupport.Detect : InteractionSupport.No,
        });
        if (!terminal)
        {
            Console.Profile.Width = 200;
        }
    }

    /// <summary>
    /// This context with the tables and notes for people on standard error, so that standard output carries only the
    /// machine-readable result (<c>--json -</c>).
    /// </summary>
    public CliContext WithTablesOnStandardError() => new(Err, Err, Arguments);

    /// <summary>The command line as given (for reports that say how they were made).</summary>
    public IReadOnlyList<string> Arguments { get; }

    /// <summary>The command line as one shell-quotable string, starting with <c>landscape</c>.</summary>
    public string CommandLine => "landscape " + string.Join(' ', Arguments.Select(a => a.Length == 0 || a.Any(c => char.IsWhiteSpace(c) || c is '"' or '\'' or '$') ? "'" + a.Replace("'", "'\\''") + "'" : a));

    /// <summary>Standard output.</summary>
    public TextWriter Out { get; }

    /// <summary>Standard error.</summary>
    public TextWriter Err { get; }

    /// <summary>The console for tables and progress.</summary>
    public IAnsiConsole Console { get; }

    /// <summary>
    /// Runs <paramref name="work"/> with a progress bar when the console is interactive (a terminal);
    /// otherwise runs it silently. <paramref name="work"/> reports the library's <see cref="ProgressReport"/>s (stage,
    /// fraction in [0, 1]): the bar moves with the fraction and its description names the stage.
    /// </summary>
    public T WithProgress<T>(string description, Func<ProgressSink, T> work)
    {
        if (!Console.Profile.Capabilities.Interactive)
        {
            return work(new ProgressSink(_ => { }));
        }
        T result = default!;
        Console.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(description), maxValue: 1.0);
                result = work(new ProgressSink(r =>
                {
                    task.Value = Math.Clamp(r.Fraction, 0, 1);
                    task.Description = Markup.Escape($"{description}: {r.Stage}");
                }));
                task.Value = 1.0;
            });
        return result;
    }
}

/// <summary>
/// A synchronous progress sink for <see cref="CliContext.WithProgress{T}"/>: takes the library's <see cref="ProgressReport"/>s
/// (<see cref="RunLimits.Progress"/>) on the caller's thread.
/// </summary>
public sealed class ProgressSink(Action<ProgressReport> report) : IProgress<ProgressReport>
{
    /// <inheritdoc/>
    public void Report(ProgressReport value)
    {
        ArgumentNullException.ThrowIfNull(value);
        report(value);
    }
}
