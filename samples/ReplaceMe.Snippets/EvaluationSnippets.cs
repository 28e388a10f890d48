using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Evaluation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tokenizers;

/// <summary>The snippet of docs/evaluation.md, compiled with the variables it assumes as parameters.</summary>
public static class EvaluationSnippets
{
    public static void Evaluate(string dir, IReadOnlyList<string> documents, ClozeTask clozeTask, MultipleChoiceTask piqaTask,
        DecoderModel originalModel, DecoderModel prunedModel, EvaluationOptions options)
    {
        // <snippet:evaluation>
        var tokenizer = TokenizerLoader.Load(dir);
        using var model = DecoderModel.FromPretrained(dir);
        var evaluator = new ModelEvaluator(model, tokenizer, new EvaluationOptions { MaxLength = 256, BatchSize = 8 });

        PerplexityResult ppl = evaluator.Perplexity("stories", documents);
        ClozeResult lastWord = evaluator.Cloze(ClozeTask.FromDocuments("stories-lastword", documents));
        MultipleChoiceResult piqa = evaluator.MultipleChoice(TaskLoader.LoadMultipleChoice("piqa", "piqa/validation.jsonl"));

        // The same suite on the original and the pruned model, then the table:
        var suite = new EvaluationSuite([new TextCorpus("stories", documents)], [clozeTask], [piqaTask]);
        ModelScores original = new ModelEvaluator(originalModel, tokenizer, options).Evaluate("original", suite);
        ModelScores pruned = new ModelEvaluator(prunedModel, tokenizer, options).Evaluate("pruned", suite);
        var report = RetentionReport.Create(original, [pruned]);
        Console.Write(report.ToMarkdown());   // also ToText(), ToJson()
        // </snippet:evaluation>
    }
}
