namespace LossLandscape;

/// <summary>
/// Bad input refused by the library: data, settings or an architecture that the method cannot use
/// (a construction asked for width h &lt; d, duplicate inputs, an activation that is not rectified, an
/// option value out of range, data whose shape does not fit the model). The message is one line that
/// names the problem and, where there is one, the way out.
/// </summary>
/// <remarks>
/// <para>
/// This is the library's half of the rule the <c>landscape</c> command applies to every exception:
/// bad input is the caller's to fix (the CLI prints the message and exits 2), anything else is a bug.
/// A plain <see cref="ArgumentException"/> or <see cref="InvalidOperationException"/> from the library
/// therefore means a broken contract between two pieces of code (a tensor of the wrong shape, an operator
/// that is not square), never a refusal of what a user asked for.
/// </para>
/// <para>
/// It derives from <see cref="ArgumentException"/>, so code that catches argument errors keeps catching
/// it; <see cref="Message"/> is the bare message (without <see cref="ArgumentException"/>'s
/// "(Parameter '…')" suffix), so that it reads as one line.
/// </para>
/// </remarks>
public sealed class LandscapeInputException : ArgumentException
{
    private readonly string _message;

    /// <summary>Creates the exception with a one-line message.</summary>
    public LandscapeInputException(string message) : base(message)
    {
        _message = message;
    }

    /// <summary>Creates the exception with a one-line message naming the refused argument.</summary>
    public LandscapeInputException(string message, string? paramName) : base(message, paramName)
    {
        _message = message;
    }

    /// <summary>The one-line message, without the parameter name (see <see cref="ArgumentException.ParamName"/> for that).</summary>
    public override string Message => _message;
}
