using System.Globalization;
using System.Text;
using LossLandscape.Data;
using LossLandscape.Engine;

namespace LossLandscape.Tests;

/// <summary>
/// Issue 19, findings 3 and 6: a CSV is streamed into the float64 arrays (no whole-file string, no string per cell), its
/// sizes computed in 64 bits and priced against the memory budget before anything is allocated; every non-finite cell is
/// refused in one wording; a one-hot column of real values is refused.
/// </summary>
public sealed class CsvReaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-csv-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string File(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        System.IO.File.WriteAllText(path, text);
        return path;
    }

    [Theory]
    [InlineData("NaN")]
    [InlineData("nan")]
    [InlineData("-nan")]
    [InlineData("inf")]
    [InlineData("-inf")]
    [InlineData("+INF")]
    [InlineData("Infinity")]
    [InlineData("-Infinity")]
    [InlineData("infinity")]
    [InlineData("∞")]
    [InlineData("-∞")]
    [InlineData("1e999")]
    public void Every_Non_Finite_Cell_Is_Refused_In_One_Wording(string cell)
    {
        var path = File("t.csv", $"a,b\n1,2\n3,{cell}\n");
        var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(path, TargetSpec.LastColumn));
        Assert.Equal($"{path}:3:2: '{cell}' in column 'b' is not a finite number (NaN and ±Inf are not allowed)", e.Message);
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("1,5")]
    [InlineData("0x10")]
    [InlineData("infinite")]
    public void A_Cell_That_Is_No_Number_Is_Refused_In_Another_Wording(string cell)
    {
        var path = File("t.csv", $"a,b\n1,\"{cell}\"\n");
        var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(path, TargetSpec.LastColumn));
        Assert.Equal($"{path}:2:2: '{cell}' in column 'b' is not a number", e.Message);
    }

    [Fact]
    public void One_Hot_On_A_Real_Valued_Column_Is_Refused_Naming_The_First_Non_Integer_And_Its_Line()
    {
        var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load("builtin:iris", TargetSpec.Classes("sepal_length")));
        Assert.Equal("builtin:iris:2:1: '5.1' in class column 'sepal_length' is not an integer; one-hot classes are integers or text labels, "
            + "and this real-valued column would give 35 classes, one per value (take it as a regression target instead)", e.Message);
        // The first non-integer in file order, after integer-valued ones.
        var path = File("c.csv", "x,c\n1,3\n2,1.0\n3,2\n4,0.5\n5,7.25\n");
        e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(path, TargetSpec.Classes("c")));
        Assert.StartsWith($"{path}:5:2: '0.5' in class column 'c' is not an integer", e.Message);
        // A non-finite class is refused in the one wording of non-finite cells.
        path = File("n.csv", "x,c\n1,3\n2,NaN\n");
        e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(path, TargetSpec.Classes("c")));
        Assert.Equal($"{path}:3:2: 'NaN' in column 'c' is not a finite number (NaN and ±Inf are not allowed)", e.Message);
    }

    [Fact]
    public void One_Hot_Accepts_Integer_And_Text_Labels()
    {
        // Integer-valued numbers (1.0 is an integer) in numeric order; text labels (one of them numeric) in ordinal order.
        var numeric = DatasetLoader.Load(File("i.csv", "x,c\n1,10\n2,-2\n3,1.0\n4,10\n"), TargetSpec.Classes("c"));
        Assert.Equal(new[] { "c=-2", "c=1.0", "c=10" }, numeric.TargetNames);
        Assert.Equal(new[] { 0.0, 0.0, 1.0 }, numeric.TargetRow(3));
        var text = DatasetLoader.Load(File("s.csv", "x,species\n1,setosa\n2,versicolor\n3, setosa \n4,5.5\n"), TargetSpec.Classes("species"));
        Assert.Equal(new[] { "species=5.5", "species=setosa", "species=versicolor" }, text.TargetNames);
        Assert.Equal(new[] { 0.0, 1.0, 0.0 }, text.TargetRow(2));
        // The embedded datasets' class columns.
        Assert.Equal(3, DatasetLoader.Load("builtin:iris", TargetSpec.Classes("species")).OutputDim);
        Assert.Equal(10, DatasetLoader.Load("builtin:digits", TargetSpec.Classes("digit")).OutputDim);
    }

    [Fact]
    public void One_Hot_On_A_Real_Valued_Column_Exits_2_In_One_Line()
    {
        var r = CliTests.Run("init", "--data", "builtin:iris", "--one-hot", "petal_width", "--out", Path.Combine(_dir, "m.json"));
        CliGuardTests.AssertOneLineError(r, "builtin:iris:2:4: '0.2' in class column 'petal_width' is not an integer");
        Assert.False(System.IO.File.Exists(Path.Combine(_dir, "m.json")));
    }

    [Fact]
    public void Sizes_Are_Computed_In_64_Bits_And_A_Count_Past_The_Array_Limit_Names_It()
    {
        // Fashion-MNIST's shape at 451 112 rows: 8·d·p = 2 829 446 464 bytes, past int's 2³¹ (the copy that failed with exit 70).
        Assert.Equal(353_671_808, Dataset.FlatLength(451_112, 784, "x"));
        Assert.Equal(451_112L * 785 * 8, MemoryBudget.DenseMatrixBytes(451_112, 785));
        Assert.Equal(Array.MaxLength, Dataset.FlatLength(Array.MaxLength, 1, "x"));
        var e = Assert.Throws<LandscapeInputException>(() => Dataset.FlatLength(3_000_000, 784, "big.csv: the inputs"));
        Assert.Equal("big.csv: the inputs: 3000000 rows × 784 columns = 2352000000 values, more than one .NET array holds (2147483591); use fewer rows or columns", e.Message);
        e = Assert.Throws<LandscapeInputException>(() => Dataset.FlatLength(long.MaxValue, 3, "x"));
        Assert.Contains("27670116110564327421 values", e.Message);
    }

    [Fact]
    public void Synthetic_Sizes_Past_An_Int_Or_An_Array_Name_The_Limit()
    {
        var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load("synthetic:3000000000,4", TargetSpec.LastColumn));
        Assert.Equal("synthetic:3000000000,4: the row count D 3000000000 is past the largest, 2147483647 (sizes are counted in an int)", e.Message);
        // D·P past Array.MaxLength is refused as such, before the budget (raising the budget would not help); at the default
        // budget, so that a reader without the check is refused by the budget instead of allocating 24 GB.
        var f = Assert.Throws<LandscapeInputException>(() => DatasetLoader.Load("synthetic:100000,30000", TargetSpec.LastColumn));
        Assert.Equal("synthetic data: the inputs: 100000 rows × 30000 columns = 3000000000 values, more than one .NET array holds (2147483591); use fewer rows or columns", f.Message);
    }

    [Fact]
    public void A_Subset_Or_Rows_Past_The_Array_Limit_Are_Refused_In_One_Line()
    {
        // 3 000 000 × 1000 values: an int product overflows to a negative length; refused before any large allocation.
        var row = new double[1000];
        var data = new Dataset(new[] { row }, new[] { new[] { 1.0 } });
        var e = Assert.Throws<LandscapeInputException>(() => data.Subset(new int[3_000_000]));
        Assert.Contains("3000000 rows × 1000 columns = 3000000000 values, more than one .NET array holds (2147483591)", e.Message);
        var rows = Enumerable.Repeat(row, 3_000_000).ToArray();
        e = Assert.Throws<LandscapeInputException>(() => new Dataset(rows, rows));
        Assert.Contains("inputs: 3000000 rows × 1000 columns = 3000000000 values", e.Message);
    }

    [Fact]
    public void The_Data_Is_Priced_Against_The_Budget_Before_It_Is_Allocated()
    {
        // 400 000 rows × 3 columns: 9.6 MB of float64, over a budget of 1 MB; the refusal comes after reading the file
        // once (a few 64 KiB buffers), not after building the arrays.
        var text = new StringBuilder("a,b,y\n");
        for (int i = 0; i < 400_000; i++)
        {
            text.Append(CultureInfo.InvariantCulture, $"{i % 7},{i % 11},{i % 3}\n");
        }
        var path = File("budget.csv", text.ToString());
        _ = DatasetLoader.Load("builtin:iris", TargetSpec.LastColumn); // TorchSharp set up outside the measurement
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<MemoryBudgetExceededException>(() => DatasetLoader.Load(path, TargetSpec.LastColumn, limits: new RunLimits(1_000_000)));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal($"the data of {path} (400000 rows × 2 input columns + 1 target column, float64) needs 0.01 GB, over the memory budget of 0.001 GB; "
            + "use fewer rows or columns of the data, or raise the memory budget", e.Message);
        Assert.True(allocated < 2_000_000, $"allocated {allocated} bytes before the refusal");
        Assert.Equal(400_000, DatasetLoader.Load(path, TargetSpec.LastColumn, limits: new RunLimits(10_000_000)).Count);

        // One-hot: the classes are priced too once known (here 2000 distinct labels: a 400 000 × 2000 matrix, 6.4 GB).
        var ids = new StringBuilder("a,id\n");
        for (int i = 0; i < 400_000; i++)
        {
            ids.Append(CultureInfo.InvariantCulture, $"{i % 7},{i % 2000}\n");
        }
        var idPath = File("ids.csv", ids.ToString());
        e = Assert.Throws<MemoryBudgetExceededException>(() => DatasetLoader.Load(idPath, TargetSpec.Classes("id")));
        Assert.StartsWith($"the data of {idPath} (400000 rows, one-hot targets of 2000 classes, float64) needs 6.405 GB", e.Message);
    }

    [Fact]
    public void A_Csv_Over_The_Budget_Exits_2_Naming_Budget_Gb()
    {
        var path = File("b.csv", "a,b,y\n" + string.Concat(Enumerable.Range(0, 1000).Select(i => $"{i},{i % 5},{i % 2}\n")));
        var r = CliTests.Run("init", "--data", path, "--out", Path.Combine(_dir, "m.json"), "--budget-gb", "1e-5");
        CliGuardTests.AssertOneLineError(r, $"the data of {path} (1000 rows × 2 input columns + 1 target column, float64) needs 2.4E-05 GB");
        Assert.Contains("raise --budget-gb", r.Err);
    }

    [Fact]
    public void A_Fashion_Mnist_Shaped_File_Streams_Into_The_Arrays_Within_1_5_Times_The_Data()
    {
        // 5 000 rows of 784 pixels (integers 0–255, half of them 0) and a label 0–9: 3.1 MB of float64 from a 7 MB file.
        const int Rows = 5000, Pixels = 784;
        var rng = new Random(19);
        var expected = new double[Rows, Pixels + 1];
        var text = new StringBuilder(string.Join(',', Enumerable.Range(0, Pixels).Select(j => $"p{j}")) + ",label\r\n");
        for (int i = 0; i < Rows; i++)
        {
            for (int j = 0; j <= Pixels; j++)
            {
                int v = j == Pixels ? rng.Next(10) : rng.Next(2) == 0 ? 0 : rng.Next(1, 256);
                expected[i, j] = v;
                text.Append(v.ToString(CultureInfo.InvariantCulture)).Append(j == Pixels ? "\r\n" : ",");
            }
        }
        var path = File("fashion.csv", text.ToString());
        _ = DatasetLoader.Load("builtin:iris", TargetSpec.LastColumn);

        long before = GC.GetAllocatedBytesForCurrentThread();
        var data = DatasetLoader.Load(path, TargetSpec.Classes("label"));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal((Rows, Pixels, 10), (data.Count, data.InputDim, data.OutputDim));
        for (int i = 0; i < Rows; i += 97)
        {
            for (int j = 0; j < Pixels; j++)
            {
                Assert.Equal(expected[i, j], data.Input(i, j));
            }
            Assert.Equal(1.0, data.Target(i, (int)expected[i, Pixels]));
        }
        // Every byte allocated while loading, an upper bound on its peak: within 1.5× the float64 data (d × (p + ℓ) × 8).
        long dataBytes = 8L * Rows * (Pixels + 10);
        Assert.True(allocated <= 1.5 * dataBytes, $"allocated {allocated} bytes for {dataBytes} bytes of data");
    }

    [Fact]
    public void A_File_That_Changes_Between_The_Two_Passes_Is_Refused()
    {
        foreach (var second in new[] { "a,b\n1,2\n3,4\n5,6\n", "a,b\n1,2\n", "a,c\n1,2\n3,4\n" })
        {
            int opened = 0;
            ICsvRecords Open() => new CsvReader(new StringReader(opened++ == 0 ? "a,b\n1,2\n3,4\n" : second), "t.csv");
            var e = Assert.Throws<DataFormatException>(() => CsvDatasetReader.Read(Open, "t.csv", TargetSpec.LastColumn, MemoryBudget.DefaultBytes));
            Assert.Equal("t.csv: the file changed while it was read (its first reading had 2 data rows); read it when nothing writes to it", e.Message);
        }
    }

    [Fact]
    public void The_Streaming_Reader_Reads_As_The_Whole_Text_Reader_Did_Across_Buffer_Boundaries()
    {
        // Random CSV texts with quotes, escaped quotes, commas and line breaks (\n, \r\n, \r) inside quotes, blank and
        // white-space lines, some long enough to cross the reader's 64 Ki-character refills at every kind of character:
        // the table (cells and lines) or the error is the one of the line-by-line reader of the whole text it replaces.
        var rng = new Random(7);
        string[] pieces = ["1", "2.5", "abc", " ", ",", "\"", "\"\"", "\n", "\r\n", "\r", "\"x,y\"", "\"a\r\nb\"", "\t", "é", "\"\"\"\""];
        for (int trial = 0; trial < 300; trial++)
        {
            var text = new StringBuilder();
            int length = trial % 10 == 0 ? 70_000 + rng.Next(140_000) : rng.Next(200);
            while (text.Length < length)
            {
                text.Append(pieces[rng.Next(pieces.Length)]);
            }
            if (trial % 10 == 0)
            {
                text.Insert(0, "h1,h2\n" + new string('9', 65_536 - 6 - rng.Next(4)));
            }
            string s = text.ToString();
            AssertSameAsWholeTextReader(s);
        }
        // The forms a reader must keep: quoted names, "" in quotes, a quoted line break read as \n, blank lines skipped.
        var table = CsvTable.Parse("a,\"b \"\"q\"\"\"\r\n\r\n  \r\n1,\"x\r\ny\"\r2,3", "t.csv");
        Assert.Equal(new[] { "a", "b \"q\"" }, table.Header);
        Assert.Equal(new[] { 4, 6 }, table.Rows.Select(r => r.Line));
        Assert.Equal(new[] { "1", "x\ny" }, table.Rows[0].Cells);
        Assert.Equal(new[] { "2", "3" }, table.Rows[1].Cells);
    }

    private static void AssertSameAsWholeTextReader(string text)
    {
        string? expectedError = null, actualError = null;
        (string[] Header, List<(int, string[])> Rows)? expected = null;
        CsvTable? actual = null;
        try
        {
            expected = WholeTextReader.Parse(text, "t.csv");
        }
        catch (DataFormatException e)
        {
            expectedError = e.Message;
        }
        try
        {
            actual = CsvTable.Parse(text, "t.csv");
        }
        catch (DataFormatException e)
        {
            actualError = e.Message;
        }
        Assert.Equal(expectedError, actualError);
        if (expected is { } t)
        {
            Assert.Equal(t.Header, actual!.Header);
            Assert.Equal(t.Rows.Count, actual.Rows.Count);
            for (int k = 0; k < t.Rows.Count; k++)
            {
                Assert.Equal(t.Rows[k].Item1, actual.Rows[k].Line);
                Assert.Equal(t.Rows[k].Item2, actual.Rows[k].Cells);
            }
        }
    }

    /// <summary>The reader this one replaces (CsvTable.Parse before issue 19), as the reference: the whole text, line by line.</summary>
    private static class WholeTextReader
    {
        public static (string[] Header, List<(int, string[])> Rows) Parse(string text, string source)
        {
            string[]? header = null;
            var rows = new List<(int, string[])>();
            int lineNo = 0;
            using var reader = new StringReader(text);
            while (reader.ReadLine() is { } first)
            {
                string line = first;
                lineNo++;
                int startLine = lineNo;
                while (line.Count(c => c == '"') % 2 == 1 && reader.ReadLine() is { } more)
                {
                    lineNo++;
                    line += "\n" + more;
                }
                if (string.IsNullOrWhiteSpace(line))
                {
                    continue;
                }
                var cells = SplitLine(line);
                if (header is null)
                {
                    header = cells.Select(c => c.Trim()).ToArray();
                    var dup = header.GroupBy(h => h).FirstOrDefault(g => g.Count() > 1);
                    if (dup is not null)
                    {
                        throw new DataFormatException($"{source}:{startLine}: the header names column '{dup.Key}' twice");
                    }
                    if (header.Any(string.IsNullOrEmpty))
                    {
                        throw new DataFormatException($"{source}:{startLine}:{Array.FindIndex(header, string.IsNullOrEmpty) + 1}: empty column name in the header");
                    }
                    continue;
                }
                if (cells.Length != header.Length)
                {
                    throw new DataFormatException($"{source}:{startLine}: row has {cells.Length} fields, the header has {header.Length}");
                }
                rows.Add((startLine, cells));
            }
            if (header is null)
            {
                throw new DataFormatException($"{source}: empty file, expected a header row");
            }
            if (rows.Count == 0)
            {
                throw new DataFormatException($"{source}: no data rows after the header");
            }
            return (header, rows);
        }

        private static string[] SplitLine(string line)
        {
            var cells = new List<string>();
            var cell = new StringBuilder();
            bool quoted = false;
            for (int k = 0; k < line.Length; k++)
            {
                char c = line[k];
                if (quoted)
                {
                    if (c == '"' && k + 1 < line.Length && line[k + 1] == '"')
                    {
                        cell.Append('"');
                        k++;
                    }
                    else if (c == '"')
                    {
                        quoted = false;
                    }
                    else
                    {
                        cell.Append(c);
                    }
                }
                else if (c == '"')
                {
                    quoted = true;
                }
                else if (c == ',')
                {
                    cells.Add(cell.ToString());
                    cell.Clear();
                }
                else if (c != '\r')
                {
                    cell.Append(c);
                }
            }
            cells.Add(cell.ToString());
            return cells.ToArray();
        }
    }
}
