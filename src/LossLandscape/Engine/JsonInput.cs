using System.Text.Json;

namespace LossLandscape.Engine;

/// <summary>
/// How every JSON file the library reads (model files, path files, cluster files, training histories) is parsed: a
/// property named twice in one object is an error, never "the last one wins" (RFC 8259 §4: names "SHOULD be unique";
/// System.Text.Json accepts duplicates unless told not to).
/// </summary>
public static class JsonInput
{
    /// <summary>Parser options: duplicate property names refused (comments and trailing commas are refused by default, as RFC 8259 has none).</summary>
    public static JsonDocumentOptions Strict { get; } = new() { AllowDuplicateProperties = false };

    /// <summary>
    /// The one-line reason of a <see cref="JsonException"/> for a person: a duplicate property named as such (with the
    /// property), System.Text.Json's position and internal words dropped.
    /// </summary>
    public static string Reason(JsonException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        string first = e.Message.ReplaceLineEndings("\n").Split('\n')[0];
        const string Duplicate = "Duplicate property '";
        if (first.StartsWith(Duplicate, StringComparison.Ordinal) && first.IndexOf('\'', Duplicate.Length) is int end and > 0)
        {
            return $"the key '{first[Duplicate.Length..end]}' appears twice in one object (a repeated key is refused, not overridden)";
        }
        int position = first.IndexOf(" LineNumber:", StringComparison.Ordinal);
        if (position >= 0)
        {
            first = first[..position];
        }
        int internalWords = first.IndexOf(", when isFinalBlock", StringComparison.Ordinal);
        if (internalWords >= 0)
        {
            first = first[..internalWords] + ".";
        }
        return first.Trim();
    }
}
