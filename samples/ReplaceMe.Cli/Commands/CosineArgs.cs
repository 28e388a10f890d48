using System.CommandLine;
using ReplaceMe.Core.Estimation;

namespace ReplaceMe.Cli.Commands;

/// <summary>The cosine estimator's options (<c>--estimator cosine</c>): start, loss, optimiser, the paper's preset, steps and learning rate.</summary>
internal sealed class CosineArgs
{
    public Option<string> Init { get; } = new("--cosine-init")
    {
        Description = "Start of the cosine optimisation: identity (the paper's) or lstsq (the least-squares solution)",
        DefaultValueFactory = _ => "identity",
    };
    public Option<string> Optimizer { get; } = new("--cosine-optimizer")
    {
        Description = "lbfgs (full-batch L-BFGS until the loss stops falling; the default) or adam (mini-batch Adam, ≥ 1000 steps, warm-up + cosine decay, peak lr 1e-2)",
        DefaultValueFactory = _ => "lbfgs",
    };
    public Option<string> Loss { get; } = new("--cosine-loss")
    {
        Description = "approximate (Eq. 8: cos(X·T, target − Y), the paper's and the default) or exact (Eq. 7: cos(Y + X·T, target))",
        DefaultValueFactory = _ => "approximate",
    };
    public Option<bool> Paper { get; } = new("--cosine-paper")
    {
        Description = "The paper's exact setting (Eq. 8, Adam at a constant lr 1e-4, 10 epochs of 1024-row batches, T not rescaled)",
    };
    public Option<int?> Steps { get; } = new("--cosine-steps") { Description = "Exact number of Adam steps, or most L-BFGS iterations (default: Adam max(10 epochs, 1000 steps); L-BFGS 300)" };
    public Option<double?> LearningRate { get; } = new("--cosine-lr") { Description = "Adam learning rate (the schedule's peak; Adam only); default 1e-2, or 1e-4 with --cosine-paper" };

    public CosineArgs()
    {
        Init.AcceptOnlyFromAmong("identity", "lstsq");
        Optimizer.AcceptOnlyFromAmong("lbfgs", "adam");
        Loss.AcceptOnlyFromAmong("exact", "approximate");
        CliOptions.Require(Steps, n => n is null or > 0, "--cosine-steps must be ≥ 1.");
        CliOptions.Require(LearningRate, x => x is null || (x > 0 && double.IsFinite(x.Value)), "--cosine-lr must be a finite number > 0.");
    }

    /// <summary>Adds the options and a check that they are used only with <c>--estimator cosine</c>.</summary>
    public void AddTo(Command command, Option<string> estimator)
    {
        foreach (var o in new Option[] { Init, Optimizer, Loss, Paper, Steps, LearningRate }) command.Options.Add(o);
        command.Validators.Add(result =>
        {
            string? chosen;
            try
            {
                chosen = result.GetValue(estimator);
            }
            catch (InvalidOperationException)
            {
                return; // not one of the estimators: the parser reports that
            }
            if (chosen == "cosine")
            {
                bool paper = result.GetValue(Paper);
                if (paper && (result.GetResult(Optimizer) is { Implicit: false } || result.GetResult(Loss) is { Implicit: false }))
                    result.AddError("--cosine-paper fixes the loss (approximate) and the optimiser (adam); leave out --cosine-loss and --cosine-optimizer.");
                string? optimizer;
                try
                {
                    optimizer = result.GetValue(Optimizer);
                }
                catch (InvalidOperationException)
                {
                    return; // not one of the optimisers: the parser reports that
                }
                if (!paper && optimizer != "adam" && result.GetResult(LearningRate) is { Implicit: false })
                    result.AddError("--cosine-lr is an Adam setting: add --cosine-optimizer adam (L-BFGS has no learning rate).");
                return;
            }
            foreach (var o in new Option[] { Init, Optimizer, Loss, Paper, Steps, LearningRate })
                if (result.GetResult(o) is { Implicit: false })
                    result.AddError($"{o.Name} is only used with --estimator cosine.");
        });
    }

    /// <summary>The options given on the command line.</summary>
    public CosineOptions Options(ParseResult parse)
    {
        var options = parse.GetValue(Paper) ? CosineOptions.Paper : new CosineOptions(Loss: parse.GetValue(Loss) == "approximate" ? CosineLoss.Approximate : CosineLoss.Exact)
        {
            Optimizer = parse.GetValue(Optimizer) == "adam" ? CosineOptimizer.Adam : CosineOptimizer.Lbfgs,
        };
        options = options with { Init = parse.GetValue(Init) == "lstsq" ? CosineInit.LeastSquares : CosineInit.Identity };
        if (parse.GetValue(Steps) is int steps) options = options with { Steps = steps };
        if (parse.GetValue(LearningRate) is double lr) options = options with { LearningRate = lr };
        return options;
    }
}
