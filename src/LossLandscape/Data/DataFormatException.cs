namespace LossLandscape.Data;

/// <summary>
/// Input data that cannot be used. The message is one line naming the problem and, where it
/// applies, the file, line and column (<c>file:line:column: problem</c>).
/// </summary>
public sealed class DataFormatException : Exception
{
    /// <summary>Creates the exception.</summary>
    public DataFormatException(string message) : base(message)
    {
    }
}
