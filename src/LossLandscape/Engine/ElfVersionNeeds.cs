// This one file is compiled twice: into the library (LOSSLANDSCAPE_LIBRARY defined), where
// LibTorchSharpLoader uses it at run time, and by MSBuild's RoslynCodeTaskFactory from
// build/LibTorchSharpGlibcxx.targets (shipped as buildTransitive/LossLandscape.targets), where the
// task at the end of the file uses it after build and publish. So it keeps to what both compilers
// offer: the .NET Standard 2.0 library, no records, no spans.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;

namespace LossLandscape.Engine;

/// <summary>One symbol-version requirement of an ELF object: <c>Elf64_Vernaux</c> under an <c>Elf64_Verneed</c>.</summary>
internal sealed class ElfVersionNeed
{
    internal ElfVersionNeed(string file, string version, ushort flags, ushort index, int flagsOffset)
    {
        File = file;
        Version = version;
        Flags = flags;
        Index = index;
        FlagsOffset = flagsOffset;
    }

    /// <summary>The library the version is asked of (<c>vn_file</c>), e.g. <c>libstdc++.so.6</c>.</summary>
    public string File { get; }

    /// <summary>The version name (<c>vna_name</c>), e.g. <c>GLIBCXX_3.4.32</c>.</summary>
    public string Version { get; }

    /// <summary><c>vna_flags</c>.</summary>
    public ushort Flags { get; }

    /// <summary><c>vna_other</c>: the index that <c>.gnu.version</c> uses for symbols bound to this version.</summary>
    public ushort Index { get; }

    /// <summary>Whether VER_FLG_WEAK is set: the dynamic loader then accepts the version's absence.</summary>
    public bool Weak => (Flags & ElfVersionNeeds.VerFlagWeak) != 0;

    /// <summary>The file offset of <c>vna_flags</c>.</summary>
    internal int FlagsOffset { get; }
}

/// <summary>
/// Reads and edits the symbol versioning of a 64-bit little-endian ELF shared object (the linux-x64 runtime):
/// the versions it defines (<c>.gnu.version_d</c>), the versions it needs (<c>.gnu.version_r</c>), the dynamic
/// symbols bound to each (<c>.dynsym</c> with <c>.gnu.version</c>) and its <c>DT_NEEDED</c> libraries.
/// </summary>
/// <remarks>
/// Layouts from the System V gABI and the LSB "Symbol Versioning" chapter. Only the section headers are used,
/// which every shared object from a standard toolchain keeps.
/// </remarks>
internal sealed class ElfVersionNeeds
{
    /// <summary>VER_FLG_WEAK in <c>vna_flags</c>.</summary>
    internal const ushort VerFlagWeak = 0x2;

    // Section types (sh_type) and the dynamic tag read here, from the gABI and the LSB.
    private const uint ShtDynamic = 6;
    private const uint ShtDynsym = 11;
    private const uint ShtGnuVerdef = 0x6ffffffd;
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const uint ShtGnuVersym = 0x6fffffff;
    private const long DtNeeded = 1;

    /// <summary>sizeof(Elf64_Shdr).</summary>
    private const int SectionHeaderSize = 64;

    /// <summary>sizeof(Elf64_Sym).</summary>
    private const int SymbolSize = 24;

    private readonly byte[] _elf;

    /// <summary>Parses <paramref name="elf"/> (not copied; <see cref="WithWeakVersions"/> returns a new array).</summary>
    /// <exception cref="InvalidDataException">Not a well-formed 64-bit little-endian ELF file.</exception>
    public ElfVersionNeeds(byte[] elf)
    {
        _elf = elf ?? throw new ArgumentNullException(nameof(elf));
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F' || elf[4] != 2 || elf[5] != 1)
        {
            throw new InvalidDataException("not a 64-bit little-endian ELF file");
        }
        try
        {
            Needed = ReadNeeded();
            DefinedVersions = ReadDefinedVersions();
            Needs = ReadVersionNeeds();
        }
        catch (Exception e) when (e is ArgumentException or IndexOutOfRangeException or OverflowException)
        {
            throw new InvalidDataException("malformed ELF section tables: " + e.Message, e);
        }
    }

    /// <summary>The <c>DT_NEEDED</c> entries, in order.</summary>
    public IReadOnlyList<string> Needed { get; }

    /// <summary>The version names the object defines (for libstdc++: GLIBCXX_3.4, …, CXXABI_1.3, …).</summary>
    public ISet<string> DefinedVersions { get; }

    /// <summary>Every version the object needs, of every library.</summary>
    public IReadOnlyList<ElfVersionNeed> Needs { get; }

    /// <summary>The names of the dynamic symbols bound to the version with index <paramref name="index"/>.</summary>
    public IReadOnlyList<string> SymbolsOfVersion(ushort index)
    {
        var names = new List<string>();
        int versym = FindSection(ShtGnuVersym);
        int dynsym = FindSection(ShtDynsym);
        if (versym < 0 || dynsym < 0)
        {
            return names;
        }
        int symOff = SectionOffset(dynsym);
        int strOff = SectionOffset(Link(dynsym));
        int verOff = SectionOffset(versym);
        int count = checked((int)(SectionSize(dynsym) / SymbolSize));
        for (int i = 0; i < count; i++)
        {
            // Bit 15 of a .gnu.version entry marks a hidden symbol; the low 15 bits are the index.
            if ((U16(verOff + 2 * i) & 0x7fff) == index)
            {
                names.Add(CString(strOff + (int)U32(symOff + i * SymbolSize)));
            }
        }
        return names;
    }

    /// <summary>A copy of the object with VER_FLG_WEAK set on <paramref name="needs"/> (entries of <see cref="Needs"/>); nothing else changes.</summary>
    public byte[] WithWeakVersions(IEnumerable<ElfVersionNeed> needs)
    {
        var copy = (byte[])_elf.Clone();
        foreach (var need in needs)
        {
            ushort flags = (ushort)(need.Flags | VerFlagWeak);
            copy[need.FlagsOffset] = (byte)(flags & 0xff);
            copy[need.FlagsOffset + 1] = (byte)(flags >> 8);
        }
        return copy;
    }

    private List<string> ReadNeeded()
    {
        var needed = new List<string>();
        int dynamic = FindSection(ShtDynamic);
        if (dynamic < 0)
        {
            return needed;
        }
        int off = SectionOffset(dynamic);
        int strOff = SectionOffset(Link(dynamic));
        long size = SectionSize(dynamic);
        for (int k = 0; k + 16 <= size; k += 16)
        {
            long tag = BitConverter.ToInt64(_elf, off + k);
            if (tag == 0)
            {
                break; // DT_NULL ends the array
            }
            if (tag == DtNeeded)
            {
                needed.Add(CString(strOff + checked((int)BitConverter.ToUInt64(_elf, off + k + 8))));
            }
        }
        return needed;
    }

    private HashSet<string> ReadDefinedVersions()
    {
        var defined = new HashSet<string>(StringComparer.Ordinal);
        int verdef = FindSection(ShtGnuVerdef);
        if (verdef < 0)
        {
            return defined;
        }
        int strOff = SectionOffset(Link(verdef));
        int vd = SectionOffset(verdef);
        uint count = U32(SectionHeader(verdef) + 0x2C); // sh_info: the number of Elf64_Verdef entries
        for (uint i = 0; i < count; i++)
        {
            // Elf64_Verdef: vd_aux at 12, vd_next at 16; the first Elf64_Verdaux names the version.
            int aux = vd + (int)U32(vd + 12);
            defined.Add(CString(strOff + (int)U32(aux)));
            uint next = U32(vd + 16);
            if (next == 0)
            {
                break;
            }
            vd = checked(vd + (int)next);
        }
        return defined;
    }

    private List<ElfVersionNeed> ReadVersionNeeds()
    {
        var needs = new List<ElfVersionNeed>();
        int verneed = FindSection(ShtGnuVerneed);
        if (verneed < 0)
        {
            return needs;
        }
        int strOff = SectionOffset(Link(verneed));
        int vn = SectionOffset(verneed);
        uint count = U32(SectionHeader(verneed) + 0x2C); // sh_info: the number of Elf64_Verneed entries
        for (uint i = 0; i < count; i++)
        {
            // Elf64_Verneed: vn_cnt at 2, vn_file at 4, vn_aux at 8, vn_next at 12.
            string file = CString(strOff + (int)U32(vn + 4));
            int aux = checked(vn + (int)U32(vn + 8));
            for (int j = 0; j < U16(vn + 2); j++)
            {
                // Elf64_Vernaux: vna_flags at 4, vna_other at 6, vna_name at 8, vna_next at 12.
                needs.Add(new ElfVersionNeed(file, CString(strOff + (int)U32(aux + 8)), U16(aux + 4), U16(aux + 6), aux + 4));
                uint nextAux = U32(aux + 12);
                if (nextAux == 0)
                {
                    break;
                }
                aux = checked(aux + (int)nextAux);
            }
            uint next = U32(vn + 12);
            if (next == 0)
            {
                break;
            }
            vn = checked(vn + (int)next);
        }
        return needs;
    }

    private int SectionCount => U16(0x3C);

    private int SectionHeader(int index) => checked((int)BitConverter.ToUInt64(_elf, 0x28) + index * SectionHeaderSize);

    private int FindSection(uint type)
    {
        for (int s = 0; s < SectionCount; s++)
        {
            if (U32(SectionHeader(s) + 4) == type)
            {
                return s;
            }
        }
        return -1;
    }

    private int SectionOffset(int index) => checked((int)BitConverter.ToUInt64(_elf, SectionHeader(index) + 0x18));

    private long SectionSize(int index) => checked((long)BitConverter.ToUInt64(_elf, SectionHeader(index) + 0x20));

    private int Link(int index) => (int)U32(SectionHeader(index) + 0x28);

    private ushort U16(int at) => BitConverter.ToUInt16(_elf, at);

    private uint U32(int at) => BitConverter.ToUInt32(_elf, at);

    private string CString(int at)
    {
        int end = Array.IndexOf(_elf, (byte)0, at);
        if (end < 0)
        {
            throw new InvalidDataException("unterminated string in the ELF string table");
        }
        return Encoding.ASCII.GetString(_elf, at, end - at);
    }
}

/// <summary>
/// Whether TorchSharp's <c>libLibTorchSharp.so</c> can load against the system's libstdc++, and the one edit
/// that makes it load when it cannot: VER_FLG_WEAK on a version requirement whose only symbols nothing calls.
/// </summary>
/// <remarks>
/// TorchSharp 0.107.0's library is built with GCC 13 and asks libstdc++.so.6 for GLIBCXX_3.4.32, which GCC 12's
/// libstdc++ (Debian 12, Ubuntu 22.04; up to GLIBCXX_3.4.30) lacks, so the dynamic loader refuses it. The only
/// symbol bound to that version is <c>std::ios_base_library_init()</c>, which GCC 13's &lt;iostream&gt; references
/// so that the library initialises the standard streams, and which nothing calls. With VER_FLG_WEAK on the
/// requirement the loader accepts the older libstdc++ (glibc <c>_dl_check_map_versions</c>: a weak missing
/// version is not an error), and the symbol, never called, is never bound. A missing version that a called
/// symbol needs is left alone: weakening it would turn a load-time error into a crash at the first call.
/// </remarks>
internal sealed class LibstdcxxCompatibility
{
    /// <summary>The libstdc++ soname the requirements are made of.</summary>
    internal const string Library = "libstdc++.so.6";

    /// <summary>
    /// Symbols that may lose their version because nothing calls them: <c>std::ios_base_library_init()</c>
    /// (GCC 13 <c>ios_init.cc</c>; only referenced, to force stream initialisation).
    /// </summary>
    internal static readonly string[] UncalledSymbols = { "_ZSt21ios_base_library_initv" };

    private readonly ElfVersionNeeds _library;

    /// <summary>Compares what <paramref name="library"/> needs of libstdc++ with what <paramref name="providedVersions"/> holds.</summary>
    public LibstdcxxCompatibility(ElfVersionNeeds library, ISet<string> providedVersions)
    {
        _library = library ?? throw new ArgumentNullException(nameof(library));
        if (providedVersions is null)
        {
            throw new ArgumentNullException(nameof(providedVersions));
        }
        Missing = library.Needs.Where(n => n.File == Library && !n.Weak && !providedVersions.Contains(n.Version)).ToArray();
        SymbolsByVersion = Missing.ToDictionary(n => n.Version, n => library.SymbolsOfVersion(n.Index), StringComparer.Ordinal);
        Weakenable = Missing.Where(n => SymbolsByVersion[n.Version].All(s => UncalledSymbols.Contains(s, StringComparer.Ordinal))).ToArray();
    }

    /// <summary>The strong requirements on libstdc++ that it lacks; empty when the library loads as shipped.</summary>
    public IReadOnlyList<ElfVersionNeed> Missing { get; }

    /// <summary>The missing requirements whose only symbols are <see cref="UncalledSymbols"/>.</summary>
    public IReadOnlyList<ElfVersionNeed> Weakenable { get; }

    /// <summary>The dynamic symbols bound to each missing version.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> SymbolsByVersion { get; }

    /// <summary>Whether every missing requirement may be weakened (true, trivially, when none is missing).</summary>
    public bool CanWeaken => Weakenable.Count == Missing.Count;

    /// <summary>The library with every missing requirement weakened; only when <see cref="CanWeaken"/>.</summary>
    public byte[] Weakened()
    {
        if (!CanWeaken)
        {
            throw new InvalidOperationException(Describe());
        }
        return _library.WithWeakVersions(Missing);
    }

    /// <summary>One line: what is missing and, for versions a called symbol needs, why it cannot be weakened.</summary>
    public string Describe()
    {
        if (Missing.Count == 0)
        {
            return "no version of " + Library + " is missing";
        }
        var parts = Missing.Select(n =>
        {
            var symbols = SymbolsByVersion[n.Version];
            string used = symbols.Count == 0 ? "no symbol" : string.Join(", ", symbols.Take(3)) + (symbols.Count > 3 ? $" and {symbols.Count - 3} more" : "");
            return $"{n.Version} (for {used})";
        });
        return "needs " + string.Join("; ", parts) + " of " + Library;
    }

    /// <summary>
    /// The libstdc++ the dynamic loader uses in this process: the one mapped in <c>/proc/self/maps</c> (the .NET
    /// runtime itself links libstdc++), else the first of the usual library directories that has it; null if none.
    /// </summary>
    public static string? SystemLibraryPath()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                int slash = line.IndexOf('/');
                if (slash >= 0 && Path.GetFileName(line.Substring(slash)).StartsWith(Library, StringComparison.Ordinal))
                {
                    return line.Substring(slash);
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        string[] directories = { "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib", "/lib" };
        return directories.Select(d => Path.Combine(d, Library)).FirstOrDefault(File.Exists);
    }
}

#if !LOSSLANDSCAPE_LIBRARY
/// <summary>
/// The MSBuild task of LibTorchSharpGlibcxx.targets: for each copy of libLibTorchSharp.so in an output folder, when
/// the system's libstdc++ lacks a version it needs and <see cref="LibstdcxxCompatibility"/> allows it, rewrites the
/// copy with that requirement weak. The file is replaced (new directory entry), never written in place, so a hard
/// link into the NuGet cache is never modified.
/// </summary>
public sealed class MarkLibTorchSharpCompatible : Microsoft.Build.Utilities.Task
{
    /// <summary>The copies to check; missing files are skipped.</summary>
    [Microsoft.Build.Framework.Required]
    public Microsoft.Build.Framework.ITaskItem[] Files { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();

    /// <inheritdoc />
    public override bool Execute()
    {
        var low = Microsoft.Build.Framework.MessageImportance.Low;
        string? system = LibstdcxxCompatibility.SystemLibraryPath();
        if (system is null)
        {
            Log.LogMessage(low, "No " + LibstdcxxCompatibility.Library + " found; libLibTorchSharp.so left as shipped.");
            return true;
        }
        var provided = new ElfVersionNeeds(File.ReadAllBytes(system)).DefinedVersions;
        foreach (var item in Files)
        {
            string path = item.ItemSpec;
            if (!File.Exists(path))
            {
                continue;
            }
            LibstdcxxCompatibility check;
            try
            {
                check = new LibstdcxxCompatibility(new ElfVersionNeeds(File.ReadAllBytes(path)), provided);
            }
            catch (InvalidDataException e)
            {
                Log.LogWarning($"{path}: {e.Message}; left alone.");
                continue;
            }
            if (check.Missing.Count == 0)
            {
                Log.LogMessage(low, $"{system} provides every version {path} needs; left as shipped.");
                continue;
            }
            if (!check.CanWeaken)
            {
                Log.LogWarning($"{path} {check.Describe()}, which {system} lacks and which cannot be weakened; it will not load here.");
                continue;
            }
            string tmp = path + ".weak-tmp";
            File.WriteAllBytes(tmp, check.Weakened());
            File.Delete(path); // a new directory entry: a hard-linked original stays untouched
            File.Move(tmp, path);
            Log.LogMessage(Microsoft.Build.Framework.MessageImportance.High, $"Marked {string.Join(", ", check.Missing.Select(n => n.Version))} weak in {path} ({system} lacks it).");
        }
        return !Log.HasLoggedErrors;
    }
}
#endif
