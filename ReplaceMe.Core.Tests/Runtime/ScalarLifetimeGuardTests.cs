using System.Reflection.Metadata;
using ReplaceMe.Core.Runtime;

namespace ReplaceMe.Core.Tests.Runtime;

/// <summary>
/// The build guard for TorchSharp's scalar lifetimes: no code in ReplaceMe.Core may call a TorchSharp method that
/// makes a temporary <see cref="TorchSharp.Scalar"/> (found from TorchSharp's IL by <see cref="ScalarHazards"/>), and
/// Core may create a Scalar itself only inside <see cref="HeldScalars"/> (whose helpers hold each Scalar in a
/// <c>using</c> scope across the native call) or when storing it straight into a field that outlives the calls.
/// It reads the compiled ReplaceMe.Core.dll, so it sees what the compiler chose: operators, implicit conversions,
/// default arguments and overloads.
/// </summary>
public class ScalarLifetimeGuardTests
{
    private const string HelperType = "ReplaceMe.Core.Runtime.HeldScalars";
    private static readonly ScalarHazards Hazards = ScalarHazards.ForLoadedTorchSharp;

    [Fact]
    public void TorchSharp_analysis_finds_the_known_temporary_scalars_and_clears_the_safe_overloads()
    {
        // Hand-checked against TorchSharp 0.107's source (src/TorchSharp/Tensor/Tensor.Math.cs, Tensor.cs):
        // square() => pow(2); add(Tensor) => add(target, 1); operator +(Tensor, Tensor) => left.add(right);
        // operator -(Tensor, Tensor) => left.sub(right) => sub(target, 1).
        string[] hazardous =
        [
            "TorchSharp.torch+Tensor::square()",
            "TorchSharp.torch+Tensor::add(TorchSharp.torch+Tensor)",
            "TorchSharp.torch+Tensor::op_Addition(TorchSharp.torch+Tensor, TorchSharp.torch+Tensor)",
            "TorchSharp.torch+Tensor::add_(TorchSharp.torch+Tensor)",
        ];
        foreach (var key in hazardous)
            Assert.True(Hazards.Hazardous.ContainsKey(key), $"{key} should be found hazardous.");

        // These take no Scalar or take the caller's Scalar as is.
        string[] safe =
        [
            "TorchSharp.torch+Tensor::mul(TorchSharp.torch+Tensor)",
            "TorchSharp.torch+Tensor::add(TorchSharp.torch+Tensor, TorchSharp.Scalar)",
            "TorchSharp.torch+Tensor::pow(TorchSharp.Scalar)",
            "TorchSharp.torch+Tensor::matmul(TorchSharp.torch+Tensor)",
        ];
        foreach (var key in safe)
            Assert.False(Hazards.Hazardous.ContainsKey(key), $"{key} should not be hazardous: {Hazards.Explain(key)}");

        Assert.Contains("TorchSharp.Scalar::op_Implicit(Double)", Hazards.Creators);
        Assert.Contains("TorchSharp.ScalarExtensionMethods::ToScalar(Double)", Hazards.Creators);
    }

    [Theory]
    [InlineData("ReplaceMe.Core")]
    [InlineData("ReplaceMe.Cli")]
    public void Shipped_code_makes_no_temporary_TorchSharp_scalar(string assembly)
    {
        var path = (assembly == "ReplaceMe.Core" ? typeof(HeldScalars) : typeof(ReplaceMe.Cli.CliApp)).Assembly.Location;
        var violations = Violations(path);
        Assert.True(violations.Count == 0,
            $"{assembly} creates TorchSharp scalars that nothing keeps alive (use HeldScalars' helpers or a held field):\n  " +
            string.Join("\n  ", violations));
    }

    [Fact]
    public void The_guard_flags_each_kind_of_temporary_scalar_in_code_that_has_them()
    {
        // ScalarMisuse (below, in this test assembly) commits each mistake once; the guard must see every one.
        var violations = Violations(typeof(ScalarLifetimeGuardTests).Assembly.Location)
            .Where(v => v.Contains(nameof(ScalarMisuse), StringComparison.Ordinal)).ToList();
        string[] expected =
        [
            "Square_", "Sum_", "ImplicitAlpha_", "ClampDouble_", "LocalHold_",
        ];
        foreach (var method in expected)
            Assert.True(violations.Any(v => v.Contains("::" + method, StringComparison.Ordinal)),
                $"The guard missed ScalarMisuse.{method}: {string.Join("; ", violations)}");
        Assert.DoesNotContain(violations, v => v.Contains("::Fine_", StringComparison.Ordinal));
    }

    /// <summary>Violations of the rule in the assembly at <paramref name="path"/>, one line each.</summary>
    internal static List<string> Violations(string path)
    {
        var violations = new List<string>();
        foreach (var call in IlCallGraph.Calls(path))
        {
            if (call.TargetAssembly != "TorchSharp") continue;
            if (Hazards.Hazardous.ContainsKey(call.Target))
            {
                violations.Add($"{ScalarHazards.Short(call.Caller)} calls {ScalarHazards.Short(call.Target)}, which {Hazards.Explain(call.Target)}");
            }
            else if (Hazards.Creators.Contains(call.Target) && call.CallerTopLevelType != HelperType &&
                     call.NextOpCode is not (ILOpCode.Stfld or ILOpCode.Stsfld))
            {
                violations.Add($"{ScalarHazards.Short(call.Caller)} creates a Scalar with {ScalarHazards.Short(call.Target)} " +
                               "that is not stored in a field (IL offset " + call.Offset + ")");
            }
        }
        return violations.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
    }
}
