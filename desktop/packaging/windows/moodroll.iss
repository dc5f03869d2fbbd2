; Inno Setup script: dist\moodroll\ (PyInstaller one-folder) -> dist\Moodroll-<v>-setup.exe
; build.sh calls:  iscc /DAppVersion=0.1.0 /DSourceDir=...\dist\moodroll /DRepoDir=... /O...\dist moodroll.iss
; Installs per user by default (no admin prompt), puts moodroll.exe on the user's PATH and adds
; Start-menu entries. Windows has no virtual MIDI ports for Python programs: the last page tells
; the user to install loopMIDI or Windows MIDI Services and pick that port (see docs/install.md).
#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef SourceDir
  #define SourceDir "..\..\..\dist\moodroll"
#endif
#ifndef RepoDir
  #define RepoDir "..\..\.."
#endif

[Setup]
AppId={{6F1D2C7A-4B8E-4E5C-9A61-3D0B7E2A9C14}
AppName=Moodroll
AppVersion={#AppVersion}
AppPublisher=Moodroll developers
DefaultDirName={autopf}\Moodroll
DefaultGroupName=Moodroll
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputBaseFilename=Moodroll-{#AppVersion}-setup
SetupIconFile={#RepoDir}\assets\icons\moodroll.ico
UninstallDisplayIcon={app}\moodroll-app.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ChangesEnvironment=yes
InfoAfterFile={#RepoDir}\desktop\packaging\windows\after_install.txt

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: recursesubdirs createallsubdirs ignoreversion

[Icons]
Name: "{group}\Moodroll"; Filename: "{app}\moodroll-app.exe"
Name: "{group}\Uninstall Moodroll"; Filename: "{uninstallexe}"
Name: "{autodesktop}\Moodroll"; Filename: "{app}\moodroll-app.exe"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop shortcut"; Flags: unchecked
Name: "addtopath"; Description: "Add the moodroll command line to PATH"

[Registry]
Root: HKA; Subkey: "{code:EnvKey}"; ValueType: expandsz; ValueName: "Path"; \
  ValueData: "{olddata};{app}"; Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\moodroll-app.exe"; Description: "Start Moodroll"; Flags: nowait postinstall skipifsilent

[Code]
function EnvKey(Param: String): String;
begin
  if IsAdminInstallMode then
    Result := 'SYSTEM\CurrentControlSet\Control\Session Manager\Environment'
  else
    Result := 'Environment';
end;

function NeedsAddPath(Dir: String): Boolean;
var
  Paths: String;
  RootKey: Integer;
begin
  if IsAdminInstallMode then RootKey := HKEY_LOCAL_MACHINE else RootKey := HKEY_CURRENT_USER;
  if not RegQueryStringValue(RootKey, EnvKey(''), 'Path', Paths) then
    Result := True
  else
    Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';') = 0;
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  Paths, Dir: String;
  RootKey, P: Integer;
begin
  if CurUninstallStep <> usPostUninstall then exit;
  if IsAdminInstallMode then RootKey := HKEY_LOCAL_MACHINE else RootKey := HKEY_CURRENT_USER;
  if not RegQueryStringValue(RootKey, EnvKey(''), 'Path', Paths) then exit;
  Dir := ';' + ExpandConstant('{app}');
  P := Pos(Uppercase(Dir), Uppercase(Paths));
  if P > 0 then
  begin
    Delete(Paths, P, Length(Dir));
    RegWriteExpandStringValue(RootKey, EnvKey(''), 'Path', Paths);
  end;
end;
