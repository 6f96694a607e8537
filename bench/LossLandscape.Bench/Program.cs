using LossLandscape.Bench;

return BenchRunner.Run(args);
