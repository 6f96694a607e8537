using System.Buffers;

namespace LossLandscape.Data;

/// <summary>
/// The records of a CSV source, one at a time: the current record as a <see cref="CsvRow"/> of spans (no string per
/// cell) and the 1-based line it starts on. Valid until the next <see cref="Read"/>.
/// </summary>
internal interface ICsvRecords : IDisposable
{
    /// <summary>Moves to the next record, blank lines skipped; false at the end of the source.</summary>
    bool Read();

    /// <summary>The 1-based line the current record starts on.</summary>
    long Line { get; }

    /// <summary>The current record.</summary>
    CsvRow Row { get; }
}

/// <summary>The fields of one record: spans of the reader's buffers, unquoted and untrimmed.</summary>
internal readonly ref struct CsvRow
{
    private readonly ReadOnlySpan<char> _text;
    private readonly ReadOnlySpan<char> _scratch;
    private readonly ReadOnlySpan<int> _starts;
    private readonly ReadOnlySpan<int> _lengths;

    /// <summary>A row whose field k is <c>text[starts[k]..][..lengths[k]]</c>, or <c>scratch[~starts[k]..]</c> for a negative start.</summary>
    public CsvRow(ReadOnlySpan<char> text, ReadOnlySpan<char> scratch, ReadOnlySpan<int> starts, ReadOnlySpan<int> lengths)
    {
        _text = text;
        _scratch = scratch;
        _starts = starts;
        _lengths = lengths;
    }

    /// <summary>The number of fields.</summary>
    public int Count => _starts.Length;

    /// <summary>Field <paramref name="index"/>.</summary>
    public ReadOnlySpan<char> this[int index]
    {
        get
        {
            int start = _starts[index];
            return start >= 0 ? _text.Slice(start, _lengths[index]) : _scratch.Slice(~start, _lengths[index]);
        }
    }
}

/// <summary>
/// A streaming RFC 4180 reader: a character buffer refilled from a <see cref="TextReader"/>, so that a file of any
/// size is read in constant memory besides its longest record. Quoting as RFC 4180 §2: a field in double quotes may
/// hold commas and line breaks (read as <c>\n</c>), <c>""</c> inside quotes is one quote. Line breaks are <c>\n</c>,
/// <c>\r\n</c> or <c>\r</c> (as <see cref="TextReader.ReadLine"/>); a line of white space only is skipped.
/// </summary>
/// <remarks>
/// Unquoted fields are spans of the read buffer; only a field holding a quote is copied (unescaped) into a scratch
/// buffer. A record cut by the end of the buffer is parsed again from its start after the refill, so that every
/// field of a record lies in one buffer.
/// </remarks>
internal sealed class CsvReader : ICsvRecords
{
    /// <summary>Characters read from the source at a time (and the first buffer's size): 64 Ki, a few records of a wide file.</summary>
    private const int ChunkChars = 1 << 16;

    /// <summary>
    /// Characters of a cell looked at one by one before the vectorized search: 8 covers a pixel, a count or a label
    /// (chosen, not derived: below a vector's width the search's setup costs more than the plain loop).
    /// </summary>
    private const int ShortCell = 8;

    private static readonly SearchValues<char> Special = SearchValues.Create(",\"\n\r");

    private readonly TextReader _reader;
    private readonly string _source;
    private char[] _buffer = new char[ChunkChars];
    private int _position;
    private int _length;
    private bool _endOfSource;
    private long _nextLine = 1;

    private char[] _scratch = new char[256];
    private int _scratchLength;
    private int[] _starts = new int[16];
    private int[] _lengths = new int[16];
    private int _fieldCount;

    /// <summary>Reads records from <paramref name="reader"/> (disposed with this reader); <paramref name="source"/> names it in messages.</summary>
    public CsvReader(TextReader reader, string source)
    {
        _reader = reader;
        _source = source;
    }

    /// <summary>A reader of the file at <paramref name="path"/> (encoding from its byte order mark, else UTF-8, as <see cref="File.ReadAllText(string)"/>).</summary>
    /// <exception cref="DataFormatException">The path is a directory, does not exist or cannot be read.</exception>
    public static CsvReader OpenFile(string path)
    {
        if (Directory.Exists(path))
        {
            throw new DataFormatException($"{path}: is a directory, expected a CSV file");
        }
        if (!File.Exists(path))
        {
            throw new DataFormatException($"{path}: file not found");
        }
        try
        {
            return new CsvReader(new StreamReader(path, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true, new FileStreamOptions { BufferSize = ChunkChars, Options = FileOptions.SequentialScan }), path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException($"{path}: cannot read: {e.Message}");
        }
    }

    /// <inheritdoc/>
    public long Line { get; private set; }

    /// <inheritdoc/>
    public CsvRow Row => new(_buffer, _scratch, _starts.AsSpan(0, _fieldCount), _lengths.AsSpan(0, _fieldCount));

    /// <inheritdoc/>
    public bool Read()
    {
        try
        {
            while (ParseRecord(out bool blank))
            {
                if (!blank)
                {
                    return true;
                }
            }
            return false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException($"{_source}: cannot read: {e.Message}");
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _reader.Dispose();

    /// <summary>
    /// The header: the first record, its names trimmed; <see cref="DataFormatException"/> for an empty source, a name
    /// given twice or an empty name.
    /// </summary>
    public static string[] ReadHeader(ICsvRecords records, string source)
    {
        if (!records.Read())
        {
            throw new DataFormatException($"{source}: empty file, expected a header row");
        }
        var row = records.Row;
        var header = new string[row.Count];
        for (int k = 0; k < header.Length; k++)
        {
            header[k] = row[k].Trim().ToString();
        }
        var dup = header.GroupBy(h => h).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null)
        {
            throw new DataFormatException($"{source}:{records.Line}: the header names column '{dup.Key}' twice");
        }
        if (header.Any(string.IsNullOrEmpty))
        {
            throw new DataFormatException($"{source}:{records.Line}:{Array.FindIndex(header, string.IsNullOrEmpty) + 1}: empty column name in the header");
        }
        return header;
    }

    /// <summary>Refuses a data record whose field count differs from the header's.</summary>
    public static void RequireWidth(ICsvRecords records, int width, string source)
    {
        int count = records.Row.Count;
        if (count != width)
        {
            throw new DataFormatException($"{source}:{records.Line}: row has {count} fields, the header has {width}");
        }
    }

    /// <summary>Parses the record at the read position; false at the end of the source. Parsed again from its start after a refill.</summary>
    private bool ParseRecord(out bool blank)
    {
        while (true)
        {
            switch (TryParseRecord(out blank))
            {
                case Outcome.Record:
                    return true;
                case Outcome.End:
                    return false;
                default:
                    Refill();
                    break;
            }
        }
    }

    private enum Outcome
    {
        Record,
        End,
        NeedMore,
    }

    private Outcome TryParseRecord(out bool blank)
    {
        blank = false;
        _fieldCount = 0;
        _scratchLength = 0;
        int i = _position;
        if (i == _length)
        {
            return _endOfSource ? Outcome.End : Outcome.NeedMore;
        }
        long breaks = 0; // line breaks inside quoted fields
        bool sawQuote = false;
        while (true)
        {
            // Fast path: an unquoted field is a span of the buffer up to the next comma or line break.
            int start = i;
            int hit = Scan(i);
            if (hit < 0)
            {
                if (!_endOfSource)
                {
                    return Outcome.NeedMore;
                }
                AddField(start, _length - start);
                return Finish(_length, breaks, terminated: false, sawQuote, out blank);
            }
            i += hit;
            char c = _buffer[i];
            if (c == ',')
            {
                AddField(start, i - start);
                i++;
                continue;
            }
            if (c != '"')
            {
                AddField(start, i - start);
                return EndOfLine(i, breaks, sawQuote, out blank);
            }

            // Slow path: the field holds a quote; its text, unescaped, goes to the scratch buffer.
            sawQuote = true;
            int scratchStart = _scratchLength;
            AppendScratch(_buffer.AsSpan(start, i - start));
            bool quoted = false;
            while (true)
            {
                if (i == _length)
                {
                    if (!_endOfSource)
                    {
                        return Outcome.NeedMore;
                    }
                    AddScratchField(scratchStart);
                    return Finish(_length, breaks, terminated: false, sawQuote, out blank);
                }
                c = _buffer[i];
                if (quoted)
                {
                    if (c == '"')
                    {
                        if (i + 1 == _length && !_endOfSource)
                        {
                            return Outcome.NeedMore; // is it "" (a quote) or the closing quote?
                        }
                        if (i + 1 < _length && _buffer[i + 1] == '"')
                        {
                            AppendScratch('"');
                            i += 2;
                        }
                        else
                        {
                            quoted = false;
                            i++;
                        }
                    }
                    else if (c is '\n' or '\r')
                    {
                        // A line break inside quotes is part of the field, read as \n whatever its form.
                        if (c == '\r' && i + 1 == _length && !_endOfSource)
                        {
                            return Outcome.NeedMore;
                        }
                        AppendScratch('\n');
                        breaks++;
                        i += c == '\r' && i + 1 < _length && _buffer[i + 1] == '\n' ? 2 : 1;
                    }
                    else
                    {
                        AppendScratch(c);
                        i++;
                    }
                }
                else if (c == '"')
                {
                    quoted = true;
                    i++;
                }
                else if (c == ',')
                {
                    AddScratchField(scratchStart);
                    i++;
                    break;
                }
                else if (c is '\n' or '\r')
                {
                    AddScratchField(scratchStart);
                    return EndOfLine(i, breaks, sawQuote, out blank);
                }
                else
                {
                    AppendScratch(c);
                    i++;
                }
            }
        }
    }

    /// <summary>The offset from <paramref name="i"/> of the next comma, quote or line break in the buffer; −1 if none.</summary>
    private int Scan(int i)
    {
        // Most cells are a few characters (pixels, labels): a plain loop over the first ones, then the vectorized search.
        int end = Math.Min(_length, i + ShortCell);
        for (int k = i; k < end; k++)
        {
            char c = _buffer[k];
            if (c is ',' or '"' or '\n' or '\r')
            {
                return k - i;
            }
        }
        if (end == _length)
        {
            return -1;
        }
        int hit = _buffer.AsSpan(end, _length - end).IndexOfAny(Special);
        return hit < 0 ? -1 : hit + end - i;
    }

    /// <summary>Ends the record at the line break at <paramref name="i"/> (\n, \r\n or \r).</summary>
    private Outcome EndOfLine(int i, long breaks, bool sawQuote, out bool blank)
    {
        blank = false;
        if (_buffer[i] == '\r')
        {
            if (i + 1 == _length && !_endOfSource)
            {
                return Outcome.NeedMore; // \r\n cut by the buffer's end
            }
            if (i + 1 < _length && _buffer[i + 1] == '\n')
            {
                i++;
            }
        }
        return Finish(i + 1, breaks, terminated: true, sawQuote, out blank);
    }

    private Outcome Finish(int end, long breaks, bool terminated, bool sawQuote, out bool blank)
    {
        _position = end;
        Line = _nextLine;
        _nextLine += breaks + (terminated ? 1 : 0);
        // A line of white space only (no quotes: "" is a record of one empty field) is skipped.
        blank = !sawQuote && _fieldCount == 1 && _buffer.AsSpan(_starts[0], _lengths[0]).IsWhiteSpace();
        return Outcome.Record;
    }

    private void AddField(int start, int length)
    {
        if (_fieldCount == _starts.Length)
        {
            Array.Resize(ref _starts, _starts.Length * 2);
            Array.Resize(ref _lengths, _lengths.Length * 2);
        }
        _starts[_fieldCount] = start;
        _lengths[_fieldCount] = length;
        _fieldCount++;
    }

    private void AddScratchField(int scratchStart)
    {
        AddField(~scratchStart, _scratchLength - scratchStart);
    }

    private void AppendScratch(char c)
    {
        if (_scratchLength == _scratch.Length)
        {
            _scratch = Grown(_scratch, _scratchLength + 1);
        }
        _scratch[_scratchLength++] = c;
    }

    private void AppendScratch(ReadOnlySpan<char> text)
    {
        if (_scratchLength + text.Length > _scratch.Length)
        {
            _scratch = Grown(_scratch, (long)_scratchLength + text.Length);
        }
        text.CopyTo(_scratch.AsSpan(_scratchLength));
        _scratchLength += text.Length;
    }

    /// <summary>Moves the unread record to the buffer's start (growing the buffer when it fills it) and reads more.</summary>
    private void Refill()
    {
        if (_position > 0)
        {
            Array.Copy(_buffer, _position, _buffer, 0, _length - _position);
            _length -= _position;
            _position = 0;
        }
        if (_length == _buffer.Length)
        {
            _buffer = Grown(_buffer, (long)_length + ChunkChars);
        }
        int read = _reader.Read(_buffer, _length, _buffer.Length - _length);
        if (read == 0)
        {
            _endOfSource = true;
        }
        _length += read;
    }

    /// <summary>A copy of <paramref name="array"/> with room for <paramref name="needed"/> characters (doubling, up to <see cref="Array.MaxLength"/>).</summary>
    private char[] Grown(char[] array, long needed)
    {
        if (needed > Array.MaxLength)
        {
            throw new DataFormatException($"{_source}:{_nextLine}: a record longer than {Array.MaxLength} characters, the most one .NET array holds");
        }
        var grown = new char[Math.Min(Math.Max(needed, 2L * array.Length), Array.MaxLength)];
        Array.Copy(array, grown, array.Length);
        return grown;
    }
}
