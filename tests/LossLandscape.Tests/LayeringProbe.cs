namespace LossLandscape.Tests.LayeringProbe.Above
{
    /// <summary>A type of a "higher" probe folder, for <see cref="LayeringTests.The_Check_Sees_A_Reference_Made_Only_In_A_Method_Body"/>.</summary>
    internal static class Upper
    {
        /// <summary>A value read from below.</summary>
        public static int Value => 42;
    }
}

namespace LossLandscape.Tests.LayeringProbe.Below
{
    /// <summary>Uses <see cref="Above.Upper"/> only inside a method body: no signature, field or base type names it.</summary>
    internal static class Lower
    {
        /// <summary>Reads the value above.</summary>
        public static int Read() => Above.Upper.Value + 1;
    }
}
