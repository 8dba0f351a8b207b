from service.app.cli import main

raise SystemExit(main())
