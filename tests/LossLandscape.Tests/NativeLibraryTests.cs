using System.Reflection;
using LossLandscape.Engine;
using TorchSharp;

namespace LossLandscape.Tests;

/// <summary>The ELF reading and the one edit behind the libstdc++ fix, on TorchSharp's library as shipped.</summary>
public class NativeLibraryTests
{
    private const string Glibcxx332 = "GLIBCXX_3.4.32";
    private const string Glibcxx330 = "GLIBCXX_3.4.30";

    /// <summary>TorchSharp's libLibTorchSharp.so in the package folder, never written (the test output's copy may be fixed already).</summary>
    private static byte[] Shipped()
    {
        string root = typeof(NativeLibraryTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "NuGetPackageRoot").Value!;
        var v = typeof(torch).Assembly.GetName().Version!;
        return File.ReadAllBytes(Path.Combine(root, "torchsharp", $"{v.Major}.{v.Minor}.{v.Build}", "runtimes", "linux-x64", "native", "libLibTorchSharp.so"));
    }

    private static ISet<string> AllNeededBut(ElfVersionNeeds elf, params string[] lacking) =>
        elf.Needs.Where(n => n.File == LibstdcxxCompatibility.Library).Select(n => n.Version).Except(lacking).ToHashSet();

    [Fact]
    public void Shipped_Library_Needs_Glibcxx_3_4_32_Only_For_Ios_Base_Library_Init()
    {
        var elf = new ElfVersionNeeds(Shipped());
        var need = elf.Needs.Single(n => n.Version == Glibcxx332);
        Assert.Equal(LibstdcxxCompatibility.Library, need.File);
        Assert.False(need.Weak);
        Assert.Equal(["_ZSt21ios_base_library_initv"], elf.SymbolsOfVersion(need.Index));
        Assert.Contains("libtorch_cpu.so", elf.Needed);
        Assert.Contains(LibstdcxxCompatibility.Library, elf.Needed);
    }

    [Fact]
    public void Weakening_Changes_Only_The_Flag_Of_The_Missing_Version()
    {
        byte[] shipped = Shipped();
        var check = new LibstdcxxCompatibility(new ElfVersionNeeds(shipped), AllNeededBut(new ElfVersionNeeds(shipped), Glibcxx332));
        Assert.Equal([Glibcxx332], check.Missing.Select(n => n.Version));
        Assert.True(check.CanWeaken);

        byte[] weakened = check.Weakened();
        Assert.Equal(shipped.Length, weakened.Length);
        int[] changed = Enumerable.Range(0, shipped.Length).Where(k => shipped[k] != weakened[k]).ToArray();
        Assert.Single(changed);
        Assert.Equal(ElfVersionNeeds.VerFlagWeak, weakened[changed[0]] & ElfVersionNeeds.VerFlagWeak);

        var after = new ElfVersionNeeds(weakened);
        Assert.True(after.Needs.Single(n => n.Version == Glibcxx332).Weak);
        Assert.All(after.Needs.Where(n => n.Version != Glibcxx332), n => Assert.False(n.Weak));
        Assert.Empty(new LibstdcxxCompatibility(after, AllNeededBut(after, Glibcxx332)).Missing);
    }

    [Fact]
    public void A_Missing_Version_That_A_Called_Symbol_Needs_Is_Not_Weakened()
    {
        var elf = new ElfVersionNeeds(Shipped());
        var check = new LibstdcxxCompatibility(elf, AllNeededBut(elf, Glibcxx330, Glibcxx332));
        Assert.Equal(2, check.Missing.Count);
        Assert.Equal([Glibcxx332], check.Weakenable.Select(n => n.Version));
        Assert.False(check.CanWeaken);
        string why = check.Describe();
        Assert.Contains(Glibcxx330, why);
        Assert.Contains("condition_variable", why);
        Assert.DoesNotContain('\n', why);
        Assert.Throws<InvalidOperationException>(() => check.Weakened());
    }

    [Fact]
    public void Malformed_Files_Are_Rejected_As_Invalid_Data()
    {
        Assert.Throws<InvalidDataException>(() => new ElfVersionNeeds(new byte[16]));
        // The section headers sit at the end of the file: a prefix has the header but not the tables it points to.
        Assert.Throws<InvalidDataException>(() => new ElfVersionNeeds(Shipped().AsSpan(0, 4096).ToArray()));
    }

    [Fact]
    public void System_Libstdcxx_Is_Found_And_Its_Versions_Read()
    {
        string? path = LibstdcxxCompatibility.SystemLibraryPath();
        Assert.NotNull(path);
        var defined = new ElfVersionNeeds(File.ReadAllBytes(path)).DefinedVersions;
        Assert.Contains("GLIBCXX_3.4", defined);
        Assert.Contains("CXXABI_1.3", defined);
    }

    [Fact]
    public void The_Loaded_Library_Is_Reported_And_Loads_On_This_System()
    {
        TorchRuntime.EnsureInitialized();
        Assert.Contains(TorchRuntime.NativeLibraryRoute, new[] { NativeLibraryRoute.AsShipped, NativeLibraryRoute.CompatibleCopy });
        Assert.True(File.Exists(TorchRuntime.NativeLibraryPath), TorchRuntime.NativeLibraryPath);
        var defined = new ElfVersionNeeds(File.ReadAllBytes(LibstdcxxCompatibility.SystemLibraryPath()!)).DefinedVersions;
        var loaded = new ElfVersionNeeds(File.ReadAllBytes(TorchRuntime.NativeLibraryPath!));
        // Whatever route was taken, the file that loaded asks nothing strong of libstdc++ that the system lacks.
        Assert.Empty(new LibstdcxxCompatibility(loaded, defined).Missing);
    }
}
