using LossLandscape.Cli;

return LandscapeApp.Run(args, Console.Out, Console.Error);
