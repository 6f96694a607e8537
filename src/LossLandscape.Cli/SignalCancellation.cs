using System.Runtime.InteropServices;

namespace LossLandscape.Cli;

/// <summary>
/// SIGINT (Ctrl-C) and SIGTERM (what <c>timeout</c>, SLURM and Kubernetes send) for one command: once the command's
/// interruptible work has begun (<see cref="Arm"/>), the first of them cancels <see cref="Token"/> and the process stays
/// alive to write the best point and the JSON, then exits 128 + the signal's number (<see cref="ExitCode"/>: 130 for
/// SIGINT, 143 for SIGTERM). Before that, and for a second signal, the runtime's default action applies: the process ends.
/// </summary>
/// <remarks>
/// The exit codes follow the shell's convention for a process ended by signal s, 128 + s (POSIX.1-2017, Shell Command
/// Language §2.8.2 "Exit Status for Commands"); SIGINT is 2 and SIGTERM 15 on every POSIX system. A second signal
/// is not swallowed, so a user whose run does not stop can always end it, as with any careful Unix tool.
/// </remarks>
internal sealed class SignalCancellation : IDisposable
{
    /// <summary>The shell's exit code base for a process stopped by a signal (128 + signal number).</summary>
    private const int SignalExitBase = 128;

    /// <summary>The exit code after SIGINT, 128 + 2.</summary>
    public const int SigIntExitCode = SignalExitBase + SigInt;

    /// <summary>The POSIX number of SIGINT.</summary>
    private const int SigInt = 2;

    /// <summary>The POSIX number of SIGTERM.</summary>
    private const int SigTerm = 15;

    /// <summary>
    /// Seconds a computation has, after the signal, to reach its next check before the process ends without writing:
    /// the "within a few seconds". Every loop that reports progress checks at each report; a single long
    /// library call (one LAPACK factorization) cannot be interrupted, and this bounds the wait for it.
    /// </summary>
    public const double GraceSeconds = 5;

    private readonly CancellationTokenSource _source = new();
    private readonly TextWriter _stderr;
    private Timer? _watchdog;
    private int _inWork;
    private readonly List<PosixSignalRegistration> _registrations = [];
    private int _armed;
    private int _caught;

    /// <summary>Registers the handlers (disarmed: until <see cref="Arm"/>, the signals keep their default action).</summary>
    /// <param name="stderr">Where the watchdog says why it ended the process (default: the process's stderr).</param>
    public SignalCancellation(TextWriter? stderr = null)
    {
        _stderr = stderr ?? System.Console.Error;
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM })
        {
            try
            {
                _registrations.Add(PosixSignalRegistration.Create(signal, Handle));
            }
            catch (PlatformNotSupportedException)
            {
                // SIGTERM has no equivalent on some platforms: there the default action stays, which is all that can be done.
            }
        }
    }

    /// <summary>Cancelled by the first SIGINT or SIGTERM after <see cref="Arm"/>.</summary>
    public CancellationToken Token => _source.Token;

    /// <summary>130 after SIGINT, 143 after SIGTERM; null when no signal was caught.</summary>
    public int? ExitCode => Volatile.Read(ref _caught) switch
    {
        0 => null,
        var s => SignalExitBase + s,
    };

    /// <summary>
    /// From now on the first SIGINT or SIGTERM cancels <see cref="Token"/> instead of ending the process; returns the token.
    /// Stays armed until disposed, so that a signal while the outputs are being written does not lose them.
    /// </summary>
    public CancellationToken Arm()
    {
        Volatile.Write(ref _armed, 1);
        return Token;
    }

    /// <summary>
    /// Marks the computation as running until the returned object is disposed: a signal caught while it runs gives it
    /// <see cref="GraceSeconds"/> to stop at a check; if it is still running then, the process exits with
    /// <see cref="ExitCode"/> and writes nothing (the outputs are written only after the computation, each atomically).
    /// </summary>
    public IDisposable EnterWork()
    {
        Interlocked.Increment(ref _inWork);
        return new WorkSection(this);
    }

    private sealed class WorkSection(SignalCancellation owner) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Interlocked.Decrement(ref owner._inWork);
            }
        }
    }

    /// <summary>Unregisters the handlers: the default actions return.</summary>
    public void Dispose()
    {
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }
        _watchdog?.Dispose();
        _source.Dispose();
    }

    private void Handle(PosixSignalContext context)
    {
        if (Volatile.Read(ref _armed) == 0)
        {
            return; // nothing would look at the token: the default action ends the process
        }
        if (Interlocked.CompareExchange(ref _caught, Number(context.Signal), 0) != 0)
        {
            return; // a second signal: the default action ends the process
        }
        context.Cancel = true; // keep the process alive: the work stops at its next check and the outputs are written
        _source.Cancel();
        _watchdog = new Timer(_ => Expire(context.Signal), null, TimeSpan.FromSeconds(GraceSeconds), Timeout.InfiniteTimeSpan);
    }

    private void Expire(PosixSignal signal)
    {
        if (Volatile.Read(ref _inWork) == 0)
        {
            return; // the computation stopped; the outputs are being written
        }
        try
        {
            _stderr.WriteLine($"landscape: interrupted by {signal}: the computation did not reach a check within {GraceSeconds} s (one long library call); nothing written");
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // stderr is gone: the exit code still says what happened.
        }
        int code = ExitCode ?? SignalExitBase + Number(signal);
        if (OperatingSystem.IsWindows())
        {
            Environment.Exit(code);
        }
        // _exit(2), not exit(3): exit would run libtorch's static destructors while the computation still runs inside
        // libtorch on the main thread, which crashes (exit 139 measured with Environment.Exit). Nothing is lost: the
        // outputs are written only after the computation, and stderr is unbuffered.
        ImmediateExit(code);
    }

#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code for one call that never returns.
    [DllImport("libc", EntryPoint = "_exit")]
    private static extern void ImmediateExit(int status);
#pragma warning restore SYSLIB1054

    private static int Number(PosixSignal signal) => signal == PosixSignal.SIGTERM ? SigTerm : SigInt;
}
